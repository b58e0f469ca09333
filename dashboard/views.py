"""Thin views: pages (HTML whose panels come from dashboard.panels) and the staff-only JSON
proxy to the Prometheus and Alertmanager APIs."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods
from django.views.static import serve

from dashboard import panels, upstream
from dashboard.access import staff_api, staff_page
from dashboard.acks import AckRefused, acknowledge, current_acks
from dashboard.history import alert_history
from dashboard.ranges import range_choices
from dashboard.runbooks import runbook_text
from monitoring.auth import bearer_token_ok
from monitoring.monitor.config import settings_from_env

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_SILENCE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# The Prometheus API parameters a chart sends; anything else is not forwarded.
_QUERY_PARAMS = ("query", "time", "start", "end", "step", "timeout")


def _context(request: HttpRequest, slug: str, title: str, page_panels: tuple = ()) -> dict:
    return {
        "slug": slug,
        "title": title,
        "categories": panels.CATEGORIES,
        "panels_json": panels.page_config(page_panels),
        "ranges": range_choices(upstream.retention_seconds()),
        "refresh_s": settings.DASHBOARD_REFRESH_SECONDS,
        "user_name": request.user.get_username() if request.user.is_authenticated else "token",
    }


@require_GET
@ensure_csrf_cookie
@staff_page
def overview(request: HttpRequest) -> HttpResponse:
    return render(
        request, "dashboard/page.html", _context(request, "overview", "Overview", panels.overview())
    )


@require_GET
@ensure_csrf_cookie
@staff_page
def category(request: HttpRequest, slug: str) -> HttpResponse:
    found = next((c for c in panels.CATEGORIES if c.slug == slug), None)
    if found is None:
        raise Http404(f"no dashboard page {slug!r}")
    if slug == "alerts":
        return render(request, "dashboard/alerts.html", _context(request, slug, found.title))
    if found.pending:
        return render(request, "dashboard/pending.html", _context(request, slug, found.title))
    return render(
        request,
        "dashboard/page.html",
        _context(request, slug, found.title, panels.category(slug)),
    )


@require_GET
@staff_page
def runbook(request: HttpRequest, name: str) -> HttpResponse:
    text = runbook_text(name)
    if text is None:
        raise Http404(f"no runbook {name!r}")
    return render(
        request, "dashboard/runbook.html", {**_context(request, "alerts", name), "text": text}
    )


def _relay(response, *, allow: tuple[int, ...] = ()) -> HttpResponse:
    """The upstream's answer as it came (JSON body and status): Prometheus' own error shape
    reaches the chart, which shows its message."""
    return HttpResponse(
        response.content,
        status=response.status_code,
        content_type=response.headers.get("content-type", "application/json"),
    )


def _upstream_error(exc: upstream.UpstreamError) -> JsonResponse:
    return JsonResponse(
        {"status": "error", "errorType": "unavailable", "error": str(exc)}, status=exc.status
    )


@require_GET
@staff_api
def prometheus_proxy(request: HttpRequest, endpoint: str) -> HttpResponse:
    """GET /dashboard/api/v1/<query|query_range|alerts|rules|targets> to the Prometheus API."""
    if endpoint not in ("query", "query_range", "alerts", "rules", "targets"):
        raise Http404(endpoint)
    params = {k: request.GET[k] for k in _QUERY_PARAMS if k in request.GET}
    if endpoint.startswith("query") and not params.get("query"):
        return JsonResponse(
            {"status": "error", "errorType": "bad_data", "error": "query is required"}, status=400
        )
    try:
        return _relay(upstream.prometheus().request("GET", f"/api/v1/{endpoint}", params=params))
    except upstream.UpstreamError as exc:
        return _upstream_error(exc)


# A page asks for all its panels in one request; the proxy runs the queries side by side.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-batch")
_BATCH_PATHS = {"v1/query", "v1/query_range", "v1/alerts"}
MAX_BATCH = 200


def _batch_one(item: object) -> bytes:
    """One upstream answer as JSON bytes (Prometheus' shape, errors included)."""
    if not isinstance(item, dict) or item.get("path") not in _BATCH_PATHS:
        return _error_bytes("bad_data", f"path: one of {sorted(_BATCH_PATHS)}")
    raw = item.get("params") or {}
    if not isinstance(raw, dict):
        return _error_bytes("bad_data", "params: an object")
    params = {k: str(raw[k]) for k in _QUERY_PARAMS if k in raw}
    if item["path"].startswith("v1/query") and not params.get("query"):
        return _error_bytes("bad_data", "query is required")
    try:
        response = upstream.prometheus().request("GET", f"/api/{item['path']}", params=params)
    except upstream.UpstreamError as exc:
        return _error_bytes("unavailable", str(exc))
    if not response.headers.get("content-type", "").startswith("application/json"):
        return _error_bytes("unavailable", f"upstream answered {response.status_code}, not JSON")
    return response.content


def _error_bytes(kind: str, message: str) -> bytes:
    return json.dumps({"status": "error", "errorType": kind, "error": message}).encode()


@csrf_exempt
@require_http_methods(["POST"])
@staff_api
def batch(request: HttpRequest) -> HttpResponse:
    """POST {"requests": [{"path": "v1/query_range", "params": {...}}, …]}: every answer, in
    order, as {"results": [<Prometheus JSON>, …]}. One round trip per page draw or refresh
    instead of one per panel: the browser's six connections and the per-request cost of the
    app (session, middleware) no longer decide how fast a page draws."""
    refused = _check_csrf(request)
    if refused is not None:
        return refused
    try:
        items = json.loads(request.body or b"null")["requests"]
        if not isinstance(items, list) or len(items) > MAX_BATCH:
            raise ValueError(f"requests: a list of at most {MAX_BATCH}")
    except (ValueError, TypeError, KeyError) as exc:
        return JsonResponse({"error": f"bad batch: {exc}"}, status=400)
    # The upstream's bodies are spliced, not decoded and encoded again.
    body = b'{"results":[' + b",".join(_POOL.map(_batch_one, items)) + b"]}"
    return HttpResponse(body, content_type="application/json")


def _check_csrf(request: HttpRequest) -> HttpResponse | None:
    """Session callers need the CSRF token (X-CSRFToken); a bearer-token caller sends none."""
    if bearer_token_ok(request):
        return None
    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    return reason


@csrf_exempt
@require_http_methods(["GET", "POST"])
@staff_api
def silences(request: HttpRequest) -> HttpResponse:
    """GET: the silences; POST {matchers, duration_s | endsAt, comment}: create one, as the
    signed-in user (createdBy), through the Alertmanager API v2."""
    try:
        if request.method == "GET":
            return _relay(upstream.alertmanager().request("GET", "/api/v2/silences"))
        refused = _check_csrf(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(request.body or b"null")
            silence = _silence_from(body, request)
        except (ValueError, TypeError, KeyError) as exc:
            return JsonResponse({"error": f"bad silence: {exc}"}, status=400)
        return _relay(upstream.alertmanager().request("POST", "/api/v2/silences", json=silence))
    except upstream.UpstreamError as exc:
        return _upstream_error(exc)


def _silence_from(body: dict, request: HttpRequest) -> dict:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    matchers = body["matchers"]
    if not isinstance(matchers, list) or not matchers:
        raise ValueError("matchers: a non-empty list of {name, value, isRegex, isEqual}")
    clean = []
    for m in matchers:
        if not isinstance(m, dict) or not str(m.get("name", "")).strip():
            raise ValueError("each matcher needs a name")
        clean.append(
            {
                "name": str(m["name"]).strip(),
                "value": str(m.get("value", "")),
                "isRegex": bool(m.get("isRegex", False)),
                "isEqual": bool(m.get("isEqual", True)),
            }
        )
    duration_s = float(body.get("duration_s", 0))
    if not 60 <= duration_s <= 90 * 86400:
        raise ValueError("duration_s: between 60 seconds and 90 days")
    comment = str(body.get("comment", "")).strip()
    if not comment:
        raise ValueError("comment: say why")
    now = datetime.now(UTC)
    by = request.user.get_username() if request.user.is_authenticated else "monitoring-token"
    return {
        "matchers": clean,
        "startsAt": now.isoformat().replace("+00:00", "Z"),
        "endsAt": (now + timedelta(seconds=duration_s)).isoformat().replace("+00:00", "Z"),
        "createdBy": by,
        "comment": comment,
    }


@csrf_exempt
@require_http_methods(["DELETE"])
@staff_api
def silence_expire(request: HttpRequest, silence_id: str) -> HttpResponse:
    if not _SILENCE_ID.match(silence_id):
        return JsonResponse({"error": "not a silence id"}, status=400)
    refused = _check_csrf(request)
    if refused is not None:
        return refused
    try:
        return _relay(upstream.alertmanager().request("DELETE", f"/api/v2/silence/{silence_id}"))
    except upstream.UpstreamError as exc:
        return _upstream_error(exc)


@require_GET
@staff_api
def alert_groups(request: HttpRequest) -> HttpResponse:
    """The notifier's groups (Alertmanager API v2 /alerts/groups), silenced ones included."""
    try:
        return _relay(upstream.alertmanager().request("GET", "/api/v2/alerts/groups"))
    except upstream.UpstreamError as exc:
        return _upstream_error(exc)


@require_GET
@staff_api
def history(request: HttpRequest, alert_fingerprint: str) -> HttpResponse:
    if not _FINGERPRINT.match(alert_fingerprint):
        return JsonResponse({"error": "a fingerprint is 16 hex digits"}, status=400)
    return JsonResponse(alert_history(settings_from_env().state_path, alert_fingerprint))


@require_GET
@staff_api
def acks(request: HttpRequest) -> HttpResponse:
    """The acknowledgements of the alerts firing now, newest first: the page marks those rows
    acknowledged."""
    return JsonResponse({"acks": current_acks()})


@csrf_exempt
@require_http_methods(["POST"])
@staff_api
def ack(request: HttpRequest, alert_fingerprint: str) -> HttpResponse:
    """POST {"comment": "..."} (optional): acknowledge the firing alert as the signed-in
    user, through monitoring.acknowledge (the notifier's own records). 200 the
    acknowledgement that stands (the first of the episode), 400 bad input, 404 an alert the
    monitor never had, 409 one that is not firing."""
    if not _FINGERPRINT.match(alert_fingerprint):
        return JsonResponse({"error": "a fingerprint is 16 hex digits"}, status=400)
    refused = _check_csrf(request)
    if refused is not None:
        return refused
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        comment = body.get("comment", "")
        if not isinstance(comment, str):
            raise ValueError("comment: a string")
    except ValueError as exc:
        return JsonResponse({"error": f"bad acknowledgement: {exc}"}, status=400)
    by = request.user.get_username() if request.user.is_authenticated else "monitoring-token"
    try:
        return JsonResponse({"ack": acknowledge(alert_fingerprint, by, comment.strip())})
    except AckRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)


_ASSETS = Path(__file__).resolve().parent / "static" / "dashboard"


@require_GET
@cache_control(max_age=3600)
def asset(request: HttpRequest, path: str) -> HttpResponse:
    """The dashboard's own scripts, styles and vendored uPlot, served by the app itself (no
    collectstatic or web server needed; `django.views.static.serve` confines the path to the
    directory and answers If-Modified-Since with 304)."""
    return serve(request, path, document_root=str(_ASSETS))
