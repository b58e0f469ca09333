"""The monitor's HTTP API: the subset of Prometheus' API a dashboard or Grafana needs, and under
`/api/v2/` the subset of Alertmanager's that amtool and a Prometheus need (`api_v2`).

Served by the stdlib's ThreadingHTTPServer inside the monitor process, on 127.0.0.1 by default.
When a token is configured every endpoint but `/-/healthy` and `/-/ready` needs
`Authorization: Bearer <token>` (compared in constant time). `/metrics` is the monitor's own
metrics in text format (`self_metrics`); the monitor scrapes it with its own token.

Answers use Prometheus' JSON shapes: `{"status": "success", "data": ...}`, and for errors
`{"status": "error", "errorType": "bad_data", "error": "..."}` with 400 (bad input), 422
(the query failed while executing) or 503 (not ready); the JSON itself is `api_json`'s. The
handlers are plain functions of (monitor, params) so tests call them directly as well as over
HTTP.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, generate_latest

from monitoring.escalation.api import handle_ack
from monitoring.metrics import CONTENT_TYPE
from monitoring.monitor import api_json
from monitoring.monitor.api_v2 import handle_v2
from monitoring.monitor.config import MonitorSettings
from monitoring.monitor.scrape import Scraper
from monitoring.notify.pipeline import Notifier
from monitoring.notify.state import NotifierState
from monitoring.rules.engine import Engine
from monitoring.rules.errors import ParseError, QueryError, UnsupportedError
from monitoring.rules.expr import Sel, compile_expr
from monitoring.rules.gofmt import LABEL_NAME_RE, parse_duration_ms
from monitoring.rules.group import RuleGroup
from monitoring.synthetic import Prober
from monitoring.tsdb.store import Matcher, SampleStore

__all__ = ["ApiError", "JsonText", "MonitorApi", "api_server_start", "handle"]

logger = logging.getLogger(__name__)

MAX_POINTS = 11_000
MAX_BODY_BYTES = 1 << 20  # a POSTed query form; Grafana's are a few kB
_MIN_TIME_MS = -(2**62)
_MAX_TIME_MS = 2**62


class MonitorApi(Protocol):
    """What the API reads from the running monitor (monitoring.monitor.runtime.Monitor)."""

    store: SampleStore
    engine: Engine
    scraper: Scraper
    groups: list[RuleGroup]
    evaluation_lock: threading.RLock
    metrics_registry: CollectorRegistry
    ready: bool
    started_at: float  # unix seconds
    config_errors: list[str]
    last_reload_successful: bool
    last_reload_success_time: float | None
    settings: MonitorSettings
    notifier_state: NotifierState  # what /api/v2 reads and changes
    notifier: Notifier | None  # the pipeline: the alerts /api/v2/alerts shows and takes
    prober: Prober | None  # the synthetic checks, listed with the targets

    def reload(self) -> list[str]: ...


class ApiError(Exception):
    def __init__(self, message: str, *, status: int = 400, error_type: str = "bad_data"):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


Params = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class JsonText:
    """A ``data`` object already encoded, spliced into the answer as is (query_range's)."""

    text: str


def _param(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def time_parse(text: str | None, default_ms: int, name: str) -> int:
    """Prometheus' time parameter: Unix seconds (float) or RFC 3339."""
    if text is None or text == "":
        return default_ms
    try:
        seconds = float(text)
        if math.isfinite(seconds):
            return round(seconds * 1000)
    except ValueError:
        pass
    try:
        return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise ApiError(
            f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
        ) from None


def duration_parse(text: str | None, name: str) -> int:
    """A step or timeout: float seconds or a Prometheus duration; milliseconds."""
    if not text:
        raise ApiError(f'invalid parameter "{name}": cannot parse "" to a valid duration')
    try:
        seconds = float(text)
    except ValueError:
        ms = parse_duration_ms(text)
        if ms is None:
            raise ApiError(
                f'invalid parameter "{name}": cannot parse "{text}" to a valid duration'
            ) from None
        return ms
    if not math.isfinite(seconds):
        raise ApiError(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration')
    return round(seconds * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _evaluate(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (ParseError, UnsupportedError) as exc:
        raise ApiError(f'invalid parameter "query": {exc}') from None
    except QueryError as exc:
        raise ApiError(str(exc), status=422, error_type="execution") from None


def api_query(monitor: MonitorApi, params: Params) -> dict:
    query = _param(params, "query") or ""
    t_ms = time_parse(_param(params, "time"), _now_ms(), "time")
    result = _evaluate(lambda: monitor.engine.instant(query, t_ms))
    return api_json.result_json_at(result, t_ms)


def api_query_range(monitor: MonitorApi, params: Params) -> JsonText:
    query = _param(params, "query") or ""
    start = time_parse(_param(params, "start"), _MIN_TIME_MS, "start")
    end = time_parse(_param(params, "end"), _MIN_TIME_MS, "end")
    if _param(params, "start") is None:
        raise ApiError('invalid parameter "start": cannot parse "" to a valid timestamp')
    if _param(params, "end") is None:
        raise ApiError('invalid parameter "end": cannot parse "" to a valid timestamp')
    if end < start:
        raise ApiError('invalid parameter "end": end timestamp must not be before start time')
    step = duration_parse(_param(params, "step"), "step")
    if step <= 0:
        raise ApiError(
            'invalid parameter "step": zero or negative query resolution step widths are not '
            "accepted. Try a positive integer"
        )
    if (end - start) / step > MAX_POINTS:
        raise ApiError(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
            "query resolution (?step=XX)"
        )
    result = _evaluate(lambda: monitor.engine.range(query, start, end, step))
    return JsonText(api_json.result_json_text_at(result, end))


def _matchers(params: Params, *, required: bool) -> list[list[Matcher]]:
    texts = params.get("match[]", [])
    if required and not texts:
        raise ApiError("no match[] parameter provided")
    out = []
    for text in texts:
        try:
            node = compile_expr(text)
        except QueryError as exc:
            raise ApiError(f'invalid parameter "match[]": {exc}') from None
        if not isinstance(node, Sel) or node.offset_ms or node.at is not None:
            raise ApiError(f'invalid parameter "match[]": {text!r} is not a series selector')
        if all(m.matches("") for m in node.matchers):
            raise ApiError("match[] must contain at least one non-empty matcher")
        out.append(node.matchers)
    return out


def _window(params: Params) -> tuple[int, int]:
    start = time_parse(_param(params, "start"), _MIN_TIME_MS, "start")
    end = time_parse(_param(params, "end"), _MAX_TIME_MS, "end")
    if end < start:
        raise ApiError('invalid parameter "end": end timestamp must not be before start time')
    return start, end


def _series(monitor: MonitorApi, params: Params, *, required: bool) -> list | None:
    selectors = _matchers(params, required=required)
    if not selectors:
        return None
    start, end = _window(params)
    found = set()
    for matchers in selectors:
        found.update(monitor.store.series(matchers, start, end))
    return sorted(found)


def api_series(monitor: MonitorApi, params: Params) -> list[dict]:
    return [dict(labels) for labels in _series(monitor, params, required=True) or []]


def api_labels(monitor: MonitorApi, params: Params) -> list[str]:
    series = _series(monitor, params, required=False)
    if series is None:
        return monitor.store.label_names()
    return sorted({name for labels in series for name, _ in labels})


def api_label_values(monitor: MonitorApi, params: Params, name: str) -> list[str]:
    if not LABEL_NAME_RE.match(name):
        raise ApiError(f'invalid label name: "{name}"')
    series = _series(monitor, params, required=False)
    if series is None:
        return monitor.store.label_values(name)
    return sorted({value for labels in series for n, value in labels if n == name})


def api_targets(monitor: MonitorApi, params: Params) -> dict:
    state = _param(params, "state") or "any"
    if state not in ("any", "active"):
        return {"activeTargets": [], "droppedTargets": []}
    active = [api_json.target_json(t) for t in monitor.scraper.targets()]
    if monitor.prober is not None:
        active += [api_json.check_target_json(s) for s in monitor.prober.states()]
    return {"activeTargets": active, "droppedTargets": []}


def api_rules(monitor: MonitorApi, params: Params) -> dict:
    rule_type = _param(params, "type")
    if rule_type not in (None, "", "alert", "record"):
        raise ApiError(f'invalid parameter "type": {rule_type!r} is not alert or record')
    with monitor.evaluation_lock:  # not while a group evaluates and changes its alerts
        return {"groups": api_json.rules_json(monitor.groups, rule_type or None)}


def api_alerts(monitor: MonitorApi, params: Params) -> dict:
    with monitor.evaluation_lock:
        return {"alerts": api_json.alerts_json(monitor.groups)}


def api_metadata(monitor: MonitorApi, params: Params) -> dict[str, list[dict]]:
    metadata = api_json.metadata_json(monitor.scraper.targets())
    metric = _param(params, "metric")
    if metric:
        metadata = {metric: metadata[metric]} if metric in metadata else {}
    limit = _param(params, "limit")
    if limit:
        try:
            count = int(limit)
        except ValueError:
            raise ApiError(f'invalid parameter "limit": {limit!r} is not a number') from None
        if count >= 0:
            metadata = dict(list(metadata.items())[:count])
    return metadata


def api_buildinfo(monitor: MonitorApi, params: Params) -> dict:
    return api_json.BUILDINFO


def api_runtimeinfo(monitor: MonitorApi, params: Params) -> dict:
    """Prometheus' runtime information, as far as it applies to a Python process, plus
    `configErrors`: every problem of the configuration on disk as last read (`file:line:
    problem`; empty when all of it runs). `reloadConfigSuccess` is false while there are any:
    after a refused reload (the previous configuration runs) and after a start-up that left
    parts out."""
    return api_json.runtimeinfo_json(
        started_at=monitor.started_at,
        cwd=os.getcwd(),
        reload_success=monitor.last_reload_successful,
        last_config_time=monitor.last_reload_success_time,
        config_errors=monitor.config_errors,
    )


_ROUTES: dict[str, Callable[[MonitorApi, Params], Any]] = {
    "/api/v1/query": api_query,
    "/api/v1/query_range": api_query_range,
    "/api/v1/series": api_series,
    "/api/v1/labels": api_labels,
    "/api/v1/targets": api_targets,
    "/api/v1/rules": api_rules,
    "/api/v1/alerts": api_alerts,
    "/api/v1/metadata": api_metadata,
    "/api/v1/status/buildinfo": api_buildinfo,
    "/api/v1/status/runtimeinfo": api_runtimeinfo,
    # Grafana asks for exemplars beside range queries; the monitor keeps none.
    "/api/v1/query_exemplars": lambda monitor, params: [],
}
_LABEL_VALUES = re.compile(r"^/api/v1/label/([^/]+)/values$")


def handle(
    monitor: MonitorApi, method: str, path: str, params: Params, body: bytes = b""
) -> tuple[int, str, bytes]:
    """Route one request; returns (status, content type, body). Never raises."""
    try:
        if path.startswith("/api/v2/"):  # Alertmanager's API: its own shapes (api_v2)
            return handle_v2(monitor, method, path, params, body, _now_ms())
        acked = handle_ack(monitor, method, path, params, body)  # acknowledgements
        if acked is not None:
            return acked
        if path == "/-/healthy":
            return 200, "text/plain", b"Prometheus Server is Healthy.\n"
        if path == "/-/ready":
            if monitor.ready:
                return 200, "text/plain", b"Prometheus Server is Ready.\n"
            return 503, "text/plain", b"Service Unavailable\n"
        if path == "/-/reload":
            if method != "POST":
                return 405, "text/plain", b"Only POST requests allowed\n"
            errors = monitor.reload()
            if errors:
                return (
                    500,
                    "text/plain",
                    ("failed to reload config: " + "\n".join(errors) + "\n").encode(),
                )
            return 200, "text/plain", b""
        if method not in ("GET", "POST"):
            return 405, "text/plain", b"Method Not Allowed\n"
        if path == "/metrics":  # the monitor's own metrics, which it scrapes as "prometheus"
            return 200, CONTENT_TYPE, generate_latest(monitor.metrics_registry)
        route = _ROUTES.get(path)
        match = _LABEL_VALUES.match(path)
        if route is not None:
            data = route(monitor, params)
        elif match:
            data = api_label_values(monitor, params, match[1])
        else:
            return 404, "text/plain", b"404 page not found\n"
        if isinstance(data, JsonText):
            return 200, "application/json", b'{"status":"success","data":%s}' % data.text.encode()
        return 200, "application/json", api_json.success_body(data)
    except ApiError as exc:
        return exc.status, "application/json", api_json.error_body(str(exc), exc.error_type)
    except Exception:
        logger.exception("API request %s %s failed", method, path)
        return 500, "application/json", api_json.error_body("internal error", "internal")


def _token_ok(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle's algorithm the body waited for the
    # client's delayed ACK of the headers, 40 ms on every small answer.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        # http.server's default, "BaseHTTP/0.6 Python/3.11.7", tells a caller which runtime
        # (and its known flaws) to aim at; the Server header names only the product.
        return "pasargad-monitor"

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        body = b""
        if method in ("POST", "DELETE"):
            problem, body = self._read_form(params)
            if problem:
                self.close_connection = True  # the body was not read: the stream is unusable
                self._answer(problem[0], "application/json", api_json.error_body(problem[1]))
                return
        token = self.server.token
        public = url.path in ("/-/healthy", "/-/ready")
        if token and not public and not _token_ok(self.headers.get("Authorization", ""), token):
            body = api_json.error_body("bearer token required", "unauthorized")
            self._answer(401, "application/json", body)
            return
        status, ctype, answer = handle(self.server.monitor, method, url.path, params, body)
        self._answer(status, ctype, answer)

    def _read_form(self, params: Params) -> tuple[tuple[int, str] | None, bytes]:
        """Merge a POSTed form into params; the raw body (a JSON one is the handler's), or
        (status, problem) when the body is unacceptable."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return (400, "invalid Content-Length"), b""
        if length < 0:
            return (400, "invalid Content-Length"), b""
        if length > MAX_BODY_BYTES:
            return (413, f"request body larger than {MAX_BODY_BYTES} bytes"), b""
        raw = self.rfile.read(length) if length else b""
        if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form = parse_qs(raw.decode(errors="replace"), keep_blank_values=True)
            for key, values in form.items():
                params.setdefault(key, []).extend(values)
        return None, raw

    def _answer(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header(
            "Content-Type",
            ctype
            + ("; charset=utf-8" if ctype.startswith("text") and "charset" not in ctype else ""),
        )
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api %s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Grafana opens a connection per panel, a Prometheus or a burst of API clients many at
    # once: with Python's default listen backlog of 5 the rest's SYNs are dropped and resent
    # after 1, 3, 7… s. Go's servers (Prometheus, Alertmanager) take the kernel's somaxconn.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], monitor: MonitorApi, token: str):
        super().__init__(address, _Handler)
        self.monitor = monitor
        self.token = token


def api_server_start(monitor: MonitorApi, *, host: str, port: int, token: str = "") -> _Server:
    """Serve the API on a background thread; `server.shutdown()` stops it."""
    server = _Server((host, port), monitor, token)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.2,), name="monitor api", daemon=True
    )
    thread.start()
    logger.info("monitor API listening on http://%s:%d", host, server.server_address[1])
    return server
