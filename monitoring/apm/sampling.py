"""Sampling decided before any instrumentation works: most requests then cost almost nothing.

OpenTelemetry's Django middleware collects a request's attributes and starts its span before
the sampler decides, and a request not sampled still makes a non-recording span per SQL query
and Redis command. `TracingGate` takes the place of that middleware and decides first, at the
ratio: a request to sample goes through it (marked, so `GateSampler` keeps its root); any
other request runs with instrumentation suppressed, making no span at all. A request that comes
with a `traceparent` goes through as it is: its caller's decision stands (parent-based).

Trade-off: the lines of a request not sampled carry no trace id (it has no trace).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from opentelemetry import context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

DJANGO_MIDDLEWARE = (
    "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
)
GATE = "monitoring.apm.sampling.TracingGate"
_SAMPLED_ROOT = context.create_key("pasargad-sampled-root")


class GateSampler(Sampler):
    """For roots: kept when the gate chose the request; otherwise (a beat task, a relay round)
    the trace-id ratio."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context,
        trace_id: int,
        name: str,
        kind=None,
        attributes=None,
        links: Sequence | None = None,
        trace_state=None,
    ) -> SamplingResult:
        if context.get_value(_SAMPLED_ROOT, parent_context):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"GateSampler{{{self._ratio.get_description()}}}"


class TracingGate:
    """In MIDDLEWARE where OpenTelemetry's Django middleware was (init_tracing puts it there)."""

    ratio = 1.0  # set by init_tracing

    def __init__(self, get_response) -> None:
        from opentelemetry.instrumentation.django.middleware.otel_middleware import (
            _DjangoMiddleware,
        )

        self.get_response = get_response
        self.traced = _DjangoMiddleware(get_response)

    def __call__(self, request):
        if "HTTP_TRACEPARENT" in request.META:
            request._apm_traced = True
            return self.traced(request)
        if random.random() < self.ratio:
            request._apm_traced = True
            token = context.attach(context.set_value(_SAMPLED_ROOT, True))
            try:
                return self.traced(request)
            finally:
                context.detach(token)
        with suppress_instrumentation():
            return self.get_response(request)

    # Django calls these hooks of the middleware in its list (the gate): the traced request's
    # span gets its route (process_view) and its exception as OpenTelemetry's would.
    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(request, "_apm_traced", False):
            return self.traced.process_view(request, view_func, view_args, view_kwargs)
        return None

    def process_exception(self, request, exception):
        if getattr(request, "_apm_traced", False):
            return self.traced.process_exception(request, exception)
        return None


def install_gate(middleware: list[str], ratio: float) -> None:
    """Put the gate in place of OpenTelemetry's Django middleware (in the settings' list)."""
    TracingGate.ratio = ratio
    if DJANGO_MIDDLEWARE in middleware:
        middleware[middleware.index(DJANGO_MIDDLEWARE)] = GATE
