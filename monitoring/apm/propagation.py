"""The trace context through the outbox: a job keeps the trace of the request that enqueued it
(W3C `traceparent`, like the request id it already keeps), and the relay publishes the job
inside that context, so Celery's instrumentation links the publish and the task's run to it.

Without this the relay thread (or a later round) would start a trace of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def trace_headers() -> dict[str, Any]:
    """`traceparent` (and `tracestate`) of the current span, for a job's headers."""
    from opentelemetry.propagate import inject

    carrier: dict[str, Any] = {}
    inject(carrier)
    return carrier


@contextlib.contextmanager
def job_trace_context(headers: dict[str, Any]) -> Iterator[None]:
    """Run (publish) a job inside the trace its headers name; no trace: as it is."""
    if "traceparent" not in headers:
        yield
        return
    from opentelemetry import context
    from opentelemetry.propagate import extract

    token = context.attach(extract(headers))
    try:
        yield
    finally:
        context.detach(token)


def connect() -> None:
    from shop.outbox.services import CONTEXT_PROVIDERS, JOB_CONTEXTS

    if trace_headers not in CONTEXT_PROVIDERS:
        CONTEXT_PROVIDERS.append(trace_headers)
    if job_trace_context not in JOB_CONTEXTS:
        JOB_CONTEXTS.append(job_trace_context)
