"""Traces over OTLP/HTTP: the OpenTelemetry SDK with the Django, Celery, Redis, sqlite3 and
psycopg instrumentations, a parent-based ratio sampler and a batch exporter.

SQL is traced on the shop's database connections (Django's), each instrumented as Django opens
it (`_trace_connection`), not by patching every `sqlite3.connect` of the process: SQLite opens a
connection per request, and one opened by a request not sampled is not instrumented at all.

One order placement is one trace: the view's span, its SQL, the Redis commands that publish the
task, and the worker's run of the task (the outbox keeps the trace context with the job, see
`propagation.py`; Celery's instrumentation carries it in the message headers). Log lines carry
the current trace id and span id (`monitoring.logging.context.set_trace_source`).
"""

from __future__ import annotations

import os
from typing import Any

# Imported with this module, which only a process with tracing on imports (setup()): the
# functions below run per request, an import statement in them is a few calls each time.
from opentelemetry.instrumentation.dbapi import get_traced_connection_proxy
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import get_current_span

_provider: Any = None


def traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the base URL of all signals; traces go to /v1/traces."""
    return endpoint.rstrip("/") + "/v1/traces"


def init_tracing(
    *,
    endpoint: str,
    service_name: str,
    ratio: float,
    environment: str,
    release: str,
    excluded_urls: str,
) -> None:
    global _provider, _sqlite_integration
    from django.db.backends.signals import connection_created
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    from monitoring.apm import propagation
    from monitoring.apm.sampling import GateSampler, install_gate
    from monitoring.logging.context import set_trace_source

    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": release,
            "deployment.environment.name": environment,
            "process.pid": os.getpid(),  # set up after a fork: each worker its own
        }
    )
    # A trace is kept or dropped once, at its root: every span below follows its parent's
    # decision (a task follows the request that caused it). Requests are decided by the gate,
    # before instrumentation does any work (sampling.py).
    provider = TracerProvider(resource=resource, sampler=ParentBased(GateSampler(ratio)))
    # Spans leave in batches from a thread of their own; a request never waits on the collector.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
    trace.set_tracer_provider(provider)
    _provider = provider
    _sqlite_integration = None  # made with this provider on the first connection

    from django.conf import settings

    DjangoInstrumentor().instrument(tracer_provider=provider, excluded_urls=excluded_urls)
    install_gate(settings.MIDDLEWARE, ratio)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    connection_created.connect(_trace_connection, dispatch_uid="apm-trace-sql")
    set_trace_source(_current_ids)
    propagation.connect()


def _current_ids() -> tuple[str, str] | None:
    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _trace_connection(sender, connection, **kwargs) -> None:
    vendor = connection.vendor
    if vendor == "sqlite":
        _trace_sqlite_connection(connection)
    elif vendor == "postgresql":
        _trace_psycopg_connection(connection)


_sqlite_integration: Any = None


def _trace_sqlite_connection(connection) -> None:
    """sqlite3's instrumentation on the new connection: a proxy that makes a span per query.

    What `SQLite3Instrumentor.instrument_connection` does, with its integration (the tracer,
    the semantic-convention modes: about 30 µs to make) made once per process rather than once
    per connection: SQLite connects per request (CONN_MAX_AGE 0), and a SQLite connection has
    no attribute the integration would read from it. Not inside a request not sampled
    (instrumentation suppressed): its connection lasts the request, it has no query to trace."""
    if not is_instrumentation_enabled():
        return
    global _sqlite_integration
    if _sqlite_integration is None:
        from opentelemetry.instrumentation import sqlite3 as instrumentation
        from opentelemetry.instrumentation.dbapi import DatabaseApiIntegration

        _sqlite_integration = DatabaseApiIntegration(
            instrumentation.__name__,
            "sqlite",
            connection_attributes={},
            version=instrumentation.__version__,
            tracer_provider=_provider,
        )
    connection.connection = get_traced_connection_proxy(connection.connection, _sqlite_integration)


def _trace_psycopg_connection(connection) -> None:
    """Django sets its own cursor factory on a new psycopg connection, replacing the one
    PsycopgInstrumentor gives at connect: each connection is instrumented once Django has.
    Always: a connection lasts CONN_MAX_AGE, across requests sampled or not."""
    raw = connection.connection
    if getattr(raw, "_is_instrumented_by_opentelemetry", False):
        return
    from opentelemetry.instrumentation.psycopg import _new_cursor_factory

    # Django's cursor class (client-side binding) stays the base: only spans are added.
    raw.cursor_factory = _new_cursor_factory(
        base_factory=raw.cursor_factory, tracer_provider=_provider
    )
    raw._is_instrumented_by_opentelemetry = True


def flush(timeout_ms: int = 5000) -> bool:
    """Export the spans still queued (tests; a process about to exit)."""
    return True if _provider is None else _provider.force_flush(timeout_ms)
