"""Errors to Sentry: unhandled exceptions of requests and Celery tasks, with our context.

Every event passes `before_send`: it gets the request id (tag `request_id`), the user id (never
more of the user: `send_default_pii` stays off), the trace id when tracing is on, and then the
log redaction (`monitoring.logging.redaction`, the same rules as every log line: sensitive keys
replaced whole, credentials and card numbers scrubbed from text), in `scrub_event`.
"""

from __future__ import annotations

from typing import Any

from monitoring.logging.context import (
    current_trace_ids,
    current_user_id,
    request_id_var,
    request_var,
)
from monitoring.logging.redaction import redact_text, redact_value

Event = dict[str, Any]


def init_sentry(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

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
        instrumenter="sentry" if traces_sample_rate else "otel",
        integrations=[
            DjangoIntegration(middleware_spans=False, signals_spans=False),
            CeleryIntegration(),
        ],
        before_send=before_send,
        before_send_transaction=scrub_event,
        # Breadcrumbs are redacted with the event they leave with (scrub_event), not one by one
        # as they are recorded: most are never sent.
    )


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
