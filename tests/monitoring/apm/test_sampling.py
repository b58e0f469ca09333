"""The gate decides before instrumentation works: a request not sampled runs with
instrumentation suppressed (no span at all); the sampler keeps the roots the gate chose."""

from django.http import HttpResponse
from django.test import RequestFactory
from opentelemetry import context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace.sampling import Decision

from monitoring.apm.sampling import (
    _SAMPLED_ROOT,
    DJANGO_MIDDLEWARE,
    GATE,
    GateSampler,
    TracingGate,
    install_gate,
)


def test_roots_the_gate_chose_are_kept_others_follow_the_ratio():
    never = GateSampler(0.0)
    chosen = context.set_value(_SAMPLED_ROOT, True)
    assert never.should_sample(chosen, 123, "GET").decision == Decision.RECORD_AND_SAMPLE
    assert never.should_sample(None, 123, "GET").decision == Decision.DROP
    always = GateSampler(1.0)
    assert always.should_sample(None, 123, "GET").decision == Decision.RECORD_AND_SAMPLE


def test_a_request_not_sampled_runs_with_instrumentation_suppressed(monkeypatch):
    seen = []

    def view(request):
        seen.append(is_instrumentation_enabled())
        return HttpResponse("ok")

    monkeypatch.setattr(TracingGate, "ratio", 0.0)
    gate = TracingGate(view)
    assert gate(RequestFactory().get("/api/catalog/products/")).status_code == 200
    assert seen == [False]
    assert is_instrumentation_enabled()  # only for the request's duration


def test_the_gate_takes_the_place_of_the_django_middleware():
    middleware = [DJANGO_MIDDLEWARE, "monitoring.http.middleware.RequestMonitoringMiddleware"]
    install_gate(middleware, 0.25)
    assert middleware[0] == GATE and TracingGate.ratio == 0.25
    TracingGate.ratio = 1.0
