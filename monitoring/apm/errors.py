"""Errors to Sentry: unhandled exceptions of requests and Celery tasks, with our context.

Tasks through Sentry's Celery integration; requests from Django's `got_request_exception`
(`report_request_exception`), not through Sentry's Django integration, whose per-request cost
is about 1 ms of CPU (see `init_sentry`). Sentry's tracing, when asked for, brings it back.

Every event passes `before_send`: it gets the request id (tag `request_id`), the user id (never
more of the user: `send_default_pii` stays off), the trace id when tracing is on, and then the
log redaction (`monitoring.logging.redaction`, the same rules as every log line: sensitive keys
replaced whole, credentials and card numbers scrubbed from text), in `scrub_event`.
"""

from __future__ import annotations

import logging
from typing import Any

from monitoring.logging.context import (
    current_trace_ids,
    current_user_id,
    request_id_var,
    request_var,
)
from monitoring.logging.redaction import redact_text, redact_value

Event = dict[str, Any]
logger = logging.getLogger(__name__)


def init_sentry(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import ignore_logger

    # Sentry's Django integration wraps every request (a forked scope, an unsampled transaction,
    # each middleware, view and SQL query): about 1,550 Python calls per request at its cheapest
    # options, 1 ms of CPU here, for errors that are a few a day (docs/benchmarks.md, APM).
    # Errors only (the default): requests are reported from Django's got_request_exception
    # instead (report_request_exception), at no cost to a request that does not fail. Sentry's
    # tracing asked for: the integration is what makes its request transactions, so it is on.
    sentry_tracing = bool(traces_sample_rate)
    integrations = [CeleryIntegration()]  # per task, not per request
    if sentry_tracing:
        integrations.append(DjangoIntegration(middleware_spans=False, signals_spans=False))
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        # None, not 0: Sentry's tracing then creates no spans at all (0 creates them unsampled).
        traces_sample_rate=traces_sample_rate or None,
        # send_default_pii stays at its default, off: no cookies, no IP address, no e-mail (the
        # user id is added by before_send).
        # Errors only unless Sentry's tracing is asked for: then its own instrumentation makes no
        # spans ("otel" leaves spans to OpenTelemetry, or to nobody), which every request would
        # pay for (bench/bench_apm.py).
        instrumenter="sentry" if sentry_tracing else "otel",
        integrations=integrations,
        # Only the integrations above: the auto-enabled ones (Django, Redis, ...) patch what
        # every request calls, for breadcrumbs and spans.
        auto_enabling_integrations=False,
        disabled_integrations=[] if sentry_tracing else [DjangoIntegration],
        before_send=before_send,
        before_send_transaction=scrub_event,
        # Breadcrumbs are redacted with the event they leave with (scrub_event), not one by one
        # as they are recorded: most are never sent.
    )
    from django.core.signals import got_request_exception

    if sentry_tracing:  # the integration reports requests' errors itself
        got_request_exception.disconnect(dispatch_uid=_RECEIVER_UID)
        return
    # Django logs each request it answers with a 500 on these loggers, at ERROR: the same
    # exception, which report_request_exception sends (once, with the request).
    ignore_logger("django.request")
    ignore_logger("django.server")
    got_request_exception.connect(report_request_exception, dispatch_uid=_RECEIVER_UID)


_RECEIVER_UID = "apm-sentry-request-exception"


# Headers that carry the client's address: personal data, never sent (as send_default_pii off).
_ADDRESS_HEADERS = frozenset({"HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED"})


def report_request_exception(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    """Django gave up on a request's exception (it answers a 500): report it with the request.

    Runs inside the handler's `except`, in the request's thread and context (request id, user,
    trace: added by before_send). The event is captured in a scope of its own without
    breadcrumbs: with no per-request scope, the shared scope's are other requests' (the request
    id leads to this request's log lines)."""
    import sys

    exc_info = sys.exc_info()
    if exc_info[1] is None:
        return
    try:
        _capture_request_exception(exc_info, request)
    except Exception:  # Django sends this signal unguarded: a failed report must not fail the 500
        logger.warning("sentry_report_failed", exc_info=True)


def _capture_request_exception(exc_info: Any, request: Any) -> None:
    import sentry_sdk
    from sentry_sdk.utils import event_from_exception

    event, hint = event_from_exception(
        exc_info,
        client_options=sentry_sdk.get_client().options,
        mechanism={"type": "django", "handled": False},
    )
    if request is not None:
        event["request"] = request_data(request)
        match = getattr(request, "resolver_match", None)
        event["transaction"] = getattr(match, "route", None) or request.path_info
    with sentry_sdk.isolation_scope() as scope:
        scope.clear_breadcrumbs()
        sentry_sdk.capture_event(event, hint=hint)


def request_data(request: Any) -> dict[str, Any]:
    """Sentry's request interface: URL, method, query and headers; no body, no cookies, no
    address (scrub_event then redacts the rest, e.g. Authorization and a token in the query)."""
    meta = request.META
    headers = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in meta.items()
        if key.startswith("HTTP_") and key not in _ADDRESS_HEADERS and key != "HTTP_COOKIE"
    }
    if meta.get("CONTENT_TYPE"):
        headers["Content-Type"] = meta["CONTENT_TYPE"]
    try:
        host = request.get_host()
    except Exception:  # a Host header not allowed: the event still goes, with the server's name
        host = meta.get("SERVER_NAME", "")
    return {
        "url": f"{request.scheme}://{host}{request.path}",
        "method": request.method,
        "query_string": meta.get("QUERY_STRING", ""),
        "headers": headers,
    }


def before_send(event: Event, hint: dict) -> Event:
    """Runs where the exception is caught (the request's or the task's thread): its context is
    the request's (the middleware's) or the task's (bound from its headers at prerun)."""
    tags = event.setdefault("tags", {})
    request_id = request_id_var.get()
    if request_id is not None:
        tags["request_id"] = request_id
    user_id = _user_id()
    if user_id is not None:
        event["user"] = {"id": str(user_id)}
    trace = current_trace_ids()
    if trace is not None:
        tags["trace_id"] = trace[0]
    return scrub_event(event, hint)


def _user_id() -> int | None:
    """The user of the request or task. A log line never resolves a lazy session user (it must
    not query); an error report may, once: without it most errors would have no user."""
    user_id = current_user_id()
    if user_id is not None:
        return user_id
    user = getattr(request_var.get(), "user", None)
    try:
        return user.pk if user is not None and user.is_authenticated else None
    except Exception:  # the database that failed the request fails this too: no user then
        return None


def _scrub_frames(holder: dict) -> None:
    for frame in (holder.get("stacktrace") or {}).get("frames") or ():
        if "vars" in frame:
            frame["vars"] = redact_value(frame["vars"])


def scrub_event(event: Event, hint: dict | None = None) -> Event:
    """The event's data sections through the log redaction, each from its own root (redaction
    stops at a depth of 8: a whole event is deeper than that)."""
    for key in ("request", "extra", "logentry", "user"):
        if key in event:
            event[key] = redact_value(event[key])
    if isinstance(event.get("message"), str):
        event["message"] = redact_text(event["message"])
    for section in ("exception", "threads"):
        for value in (event.get(section) or {}).get("values") or ():
            if isinstance(value.get("value"), str):
                value["value"] = redact_text(value["value"])
            _scrub_frames(value)
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict) and "values" in crumbs:
        crumbs["values"] = [redact_value(crumb) for crumb in crumbs["values"]]
    contexts = event.get("contexts")
    if isinstance(contexts, dict):  # the trace context's ids are hex, never secrets
        event["contexts"] = {
            name: value if name == "trace" else redact_value(value)
            for name, value in contexts.items()
        }
    for span in event.get("spans") or ():
        if "description" in span:
            span["description"] = redact_text(str(span["description"]))
        if "data" in span:
            span["data"] = redact_value(span["data"])
    return event
