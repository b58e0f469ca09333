"""The application category as JSON (`GET /api/monitoring/application/`).

The same numbers as the Prometheus endpoint (merged over worker processes), since process
start: totals and counts, not rates; rates and percentiles over a window are Prometheus' job
(recording rules `error_rate`, `response_time_p95`). Units are in the field names.
"""

from collections import defaultdict

from monitoring.http.metrics import ACTIVE_USERS
from monitoring.metrics import sample_values

__all__ = ["application_snapshot", "latency_quantile_ms"]

_TOP_ROUTES = 10


def latency_quantile_ms(buckets: dict[float, float], quantile: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts {upper bound: count}."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = quantile * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower_bound * 1000  # beyond the last finite bucket: its bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1
            return (lower_bound + (bound - lower_bound) * share) * 1000
        lower_bound, lower_count = bound, count
    return None


def _total(samples, name: str, **labels: str) -> float:
    return sum(
        (
            value
            for sample, sample_labels, value in samples
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())
        ),
        0.0,
    )


def application_snapshot() -> dict:
    samples = sample_values(
        "http_requests_total",
        "http_errors_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "user_registrations_total",
        "user_logins_total",
        "orders_placed_total",
        "orders_completed_total",
        "orders_failed_total",
        "payments_succeeded_total",
        "payments_failed_total",
        "reorder_alerts_total",
    )
    by_class: dict[str, float] = defaultdict(float)
    by_route: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    failed_by_code: dict[str, float] = defaultdict(float)
    for name, labels, value in samples:
        if name == "http_requests_total":
            by_class[labels["status"][0] + "xx"] += value
            by_route[labels["route"]] += value
        elif name == "http_request_duration_seconds_bucket":
            buckets[float(labels["le"])] += value
        elif name == "payments_failed_total":
            failed_by_code[labels["error_code"]] += value
    requests = sum(by_class.values())
    count = _total(samples, "http_request_duration_seconds_count")
    seconds = _total(samples, "http_request_duration_seconds_sum")
    top = sorted(by_route.items(), key=lambda item: -item[1])[:_TOP_ROUTES]
    return {
        "http": {
            "requests_total": requests,
            "requests_by_status_class": dict(sorted(by_class.items())),
            "client_errors_total": _total(samples, "http_errors_total", **{"class": "4xx"}),
            "server_errors_total": _total(samples, "http_errors_total", **{"class": "5xx"}),
            "server_error_percent": 100 * by_class["5xx"] / requests if requests else None,
            "latency_mean_ms": 1000 * seconds / count if count else None,
            "latency_p95_ms": latency_quantile_ms(buckets, 0.95),
            "busiest_routes": [{"route": r, "requests_total": n} for r, n in top],
        },
        "active_users": ACTIVE_USERS.counts(),
        "accounts": {
            "registrations_total": _total(samples, "user_registrations_total"),
            "logins_succeeded_total": _total(samples, "user_logins_total", result="success"),
            "logins_failed_total": _total(samples, "user_logins_total", result="failure"),
        },
        "orders": {
            "placed_total": _total(samples, "orders_placed_total"),
            "completed_total": _total(samples, "orders_completed_total"),
            "failed_total": _total(samples, "orders_failed_total"),
        },
        "payments": {
            "succeeded_total": _total(samples, "payments_succeeded_total"),
            "failed_total": sum(failed_by_code.values(), 0.0),
            "failed_by_error_code": dict(sorted(failed_by_code.items())),
        },
        "reorder_alerts_total": _total(samples, "reorder_alerts_total"),
    }
