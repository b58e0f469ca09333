"""The gate decides before instrumentation works: a request not sampled runs with
instrumentation suppressed (no span at all, not for its SQL nor its Redis commands); the
sampler keeps the roots the gate chose; a caller's `traceparent` decides for its request.

In-process: the gate around a view that runs a query on an instrumented SQLite connection and a
command on an instrumented Redis client (db 14), spans kept in memory."""

import sqlite3
from types import SimpleNamespace

import pytest
import redis
from django.http import HttpResponse
from django.test import RequestFactory
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import SpanKind
from opentelemetry.util.http import parse_excluded_urls

from monitoring.apm import propagation, traces
from monitoring.apm.sampling import (
    DJANGO_MIDDLEWARE,
    GATE,
    GateSampler,
    TracedRequests,
    TracingGate,
    install_gate,
    sampled_root,
)
from tests.services import require_redis

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def traceparent(sampled: bool) -> str:
    return f"00-{TRACE_ID}-{CALLER_SPAN}-{'01' if sampled else '00'}"


def test_roots_the_gate_chose_are_kept_others_follow_the_ratio():
    never = GateSampler(0.0)
    token = sampled_root.set(True)
    try:
        assert never.should_sample(None, 123, "GET").decision == Decision.RECORD_AND_SAMPLE
    finally:
        sampled_root.reset(token)
    assert never.should_sample(None, 123, "GET").decision == Decision.DROP
    always = GateSampler(1.0)
    assert always.should_sample(None, 123, "GET").decision == Decision.RECORD_AND_SAMPLE


def test_the_gate_takes_the_place_of_the_django_middleware():
    middleware = [DJANGO_MIDDLEWARE, "monitoring.http.middleware.RequestMonitoringMiddleware"]
    install_gate(middleware, 0.25)
    assert middleware[0] == GATE and TracingGate.ratio == 0.25
    TracingGate.ratio = 1.0


@pytest.fixture
def tracing(monkeypatch):
    """A tracer provider whose sampler never samples a root by itself (ratio 0): what is traced
    is what the gate or a caller decided. The Django middleware's class attributes are those
    DjangoInstrumentor sets, on the gate's subclass only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(GateSampler(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(TracedRequests, "_tracer", provider.get_tracer("django-under-test"))
    monkeypatch.setattr(TracedRequests, "_excluded_urls", parse_excluded_urls("api/health"))
    counter = NoOpMeter("test").create_up_down_counter("active")
    monkeypatch.setattr(TracedRequests, "_active_request_counter", counter)
    monkeypatch.setattr(traces, "_provider", provider)
    monkeypatch.setattr(traces, "_sqlite_integration", None)
    yield SimpleNamespace(exporter=exporter, provider=provider)
    provider.shutdown()


@pytest.fixture
def redis_client(tracing):
    require_redis()
    client = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    RedisInstrumentor.instrument_client(client, tracer_provider=tracing.provider)
    yield client
    RedisInstrumentor.uninstrument_client(client)
    client.close()


def serve(ratio: float, monkeypatch, redis_client, **headers) -> dict:
    """One request through the gate; the view queries SQLite and Redis and notes what it saw."""
    seen = {}

    def view(request):
        seen["instrumentation_enabled"] = is_instrumentation_enabled()
        seen["trace"] = traces._current_ids()
        seen["job_headers"] = propagation.trace_headers()  # what a job enqueued here keeps
        database = SimpleNamespace(connection=sqlite3.connect(":memory:"))
        traces._trace_sqlite_connection(database)  # as Django opens a connection
        database.connection.cursor().execute("SELECT 1").fetchall()
        database.connection.close()
        redis_client.get("apm-sampling-test")
        return HttpResponse("ok")

    monkeypatch.setattr(TracingGate, "ratio", ratio)
    gate = TracingGate(view)
    request = RequestFactory().get("/api/catalog/products/", **headers)
    assert gate(request).status_code == 200
    assert is_instrumentation_enabled()  # suppressed for the request's duration only
    return seen


@pytest.mark.redis
def test_a_request_not_sampled_makes_no_span_not_even_for_its_sql_and_redis(
    tracing, redis_client, monkeypatch
):
    seen = serve(0.0, monkeypatch, redis_client)
    assert seen == {"instrumentation_enabled": False, "trace": None, "job_headers": {}}
    assert tracing.exporter.get_finished_spans() == ()


@pytest.mark.redis
def test_a_request_the_gate_samples_is_traced_whatever_the_samplers_own_ratio(
    tracing, redis_client, monkeypatch
):
    seen = serve(1.0, monkeypatch, redis_client)
    spans = tracing.exporter.get_finished_spans()
    kinds = sorted((span.kind.name, span.attributes.get("db.system")) for span in spans)
    assert kinds == [("CLIENT", "redis"), ("CLIENT", "sqlite"), ("SERVER", None)], kinds
    [server] = [span for span in spans if span.kind == SpanKind.SERVER]
    assert {span.context.trace_id for span in spans} == {server.context.trace_id}
    assert seen["trace"] == (f"{server.context.trace_id:032x}", f"{server.context.span_id:016x}")
    assert server.parent is None


@pytest.mark.redis
def test_a_caller_that_sampled_its_request_is_always_traced(tracing, redis_client, monkeypatch):
    serve(0.0, monkeypatch, redis_client, HTTP_TRACEPARENT=traceparent(sampled=True))
    spans = tracing.exporter.get_finished_spans()
    assert len(spans) == 3
    assert {f"{span.context.trace_id:032x}" for span in spans} == {TRACE_ID}
    [server] = [span for span in spans if span.kind == SpanKind.SERVER]
    assert f"{server.parent.span_id:016x}" == CALLER_SPAN


@pytest.mark.redis
def test_a_caller_that_did_not_sample_its_request_is_not_traced_its_lines_keep_its_trace_id(
    tracing, redis_client, monkeypatch
):
    seen = serve(1.0, monkeypatch, redis_client, HTTP_TRACEPARENT=traceparent(sampled=False))
    assert tracing.exporter.get_finished_spans() == ()
    assert seen == {
        "instrumentation_enabled": False,
        "trace": (TRACE_ID, CALLER_SPAN),
        # Its jobs carry the caller's "not sampled" on to their tasks.
        "job_headers": {"traceparent": traceparent(sampled=False)},
    }


@pytest.mark.redis
def test_a_malformed_traceparent_is_ignored_the_ratio_decides(tracing, redis_client, monkeypatch):
    serve(0.0, monkeypatch, redis_client, HTTP_TRACEPARENT="00-not-a-trace-01")
    assert tracing.exporter.get_finished_spans() == ()
    serve(1.0, monkeypatch, redis_client, HTTP_TRACEPARENT="00-not-a-trace-01")
    spans = tracing.exporter.get_finished_spans()
    assert len(spans) == 3 and {f"{s.context.trace_id:032x}" for s in spans} != {TRACE_ID}


def test_the_server_span_is_named_by_the_route_django_resolved(tracing, monkeypatch):
    """The span's name comes from Django's own URL resolution (no second one)."""
    from django.urls import resolve

    def view(request):
        return HttpResponse("ok")

    monkeypatch.setattr(TracingGate, "ratio", 1.0)
    gate = TracingGate(view)
    request = RequestFactory().get("/api/catalog/products/1/")

    def through_django(r):
        r.resolver_match = resolve(r.path_info)
        return view(r)

    gate.get_response = gate.traced.get_response = through_django
    gate(request)
    [server] = tracing.exporter.get_finished_spans()
    route = resolve("/api/catalog/products/1/").route
    assert server.name == f"GET {route}" and server.attributes["http.route"] == route
