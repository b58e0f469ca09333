"""HTTP request metrics. The middleware calls `observe_request` once per request.

Exported (all aggregated over worker processes, see `monitoring.metrics`):

- ``http_requests_total{method,route,status}``: every answered request. ``route`` is the URL
  pattern (``/api/orders/<int:pk>/``), never the raw path; ``method`` outside the standard set
  is ``other``.
- ``http_request_duration_seconds{method,route}``: latency histogram, buckets 5 ms … 30 s, so a
  p95 of 5000 ms (the spec's threshold) falls between finite buckets.
- ``http_errors_total{method,route,status,class}``: 4xx and 5xx, told apart by ``class``
  (``4xx`` / ``5xx``). The dashboard's ``rate(http_errors_total[5m])`` shows both; the
  ``error_rate`` recording rule (percent) counts ``class="5xx"`` only, since 4xx are the
  clients' mistakes (scanners, expired sessions) and must not page anyone at 5 %.
- ``active_users{window="5m"|"15m"}``: distinct authenticated users seen in the window
  (see `monitoring.http.active_users`).
"""

from bisect import bisect_left

from monitoring.http.active_users import ActiveUsers, ActiveUsersCollector
from monitoring.metrics import Counter, Histogram, register_collector

__all__ = ["ACTIVE_USERS", "observe_request"]

REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
ERRORS = Counter(
    "http_errors_total",
    "HTTP requests answered 4xx or 5xx; class tells them apart.",
    ["method", "route", "status", "class"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching the monitoring middleware to its response.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 30, float("inf")),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

ACTIVE_USERS = ActiveUsers()
register_collector(ActiveUsersCollector(ACTIVE_USERS))

# (method, route, status) -> what a request writes, bound once; bounded because route and
# method are. The hot path calls the children's value objects directly (prometheus_client's
# `_value`, `_sum`, `_buckets`, `_upper_bounds`): Counter.inc and Histogram.observe add only
# checks that cannot fail here (label values bound, amount >= 0) and a linear bucket search.
# tests/monitoring/test_metrics.py and the http tests check the values this writes.
_bound: dict[tuple[str, str, int], tuple] = {}


def _bind(method: str, route: str, status: int) -> tuple:
    status_text = str(status)
    error = None
    if status >= 400:
        error = ERRORS.labels(method, route, status_text, "5xx" if status >= 500 else "4xx")
    latency = DURATION.labels(method, route)
    children = (
        REQUESTS.labels(method, route, status_text)._value.inc,
        latency._sum.inc,
        latency._upper_bounds,
        [bucket.inc for bucket in latency._buckets],
        None if error is None else error._value.inc,
    )
    _bound[(method, route, status)] = children
    return children


def observe_request(
    method: str, route: str, status: int, duration_seconds: float, user_id: int | None
) -> None:
    if method not in _METHODS:
        method = "other"
    count, add_sum, bounds, buckets, count_error = _bound.get((method, route, status)) or _bind(
        method, route, status
    )
    count(1)
    add_sum(duration_seconds)
    # The first bucket whose bound is >= the duration, as Histogram.observe picks it (the
    # last bound is +Inf; a duration is never NaN).
    buckets[bisect_left(bounds, duration_seconds)](1)
    if count_error is not None:
        count_error(1)
    if user_id is not None:
        ACTIVE_USERS.seen(user_id)
