"""Sampling decided once, first thing in a request: a request not sampled runs no tracing code.

OpenTelemetry's Django middleware collects a request's attributes and starts its span before
the sampler decides, and a request not sampled would still make a non-recording span per SQL
query and Redis command. `TracingGate` takes the place of that middleware and decides first,
parent-based:

- a request with a valid `traceparent` follows its caller: sampled (flag 01), it goes through
  OpenTelemetry's middleware and continues the caller's trace; not sampled (flag 00), it is
  served like a request not sampled, inside the caller's trace context (its log lines carry the
  caller's trace id, and the jobs it enqueues carry the caller's "not sampled" on);
- any other request is sampled at the ratio (one `random()` draw): sampled, it goes through
  OpenTelemetry's middleware, and `GateSampler` keeps the root span it starts;
- a request not sampled runs with instrumentation suppressed (one context attach and detach):
  Redis, SQL and Celery's instrumentations make no span at all in it.

Roots outside requests (a beat task, a relay round) are sampled by trace id at the ratio.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextvars import ContextVar

from opentelemetry import context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.trace import get_current_span
from opentelemetry.util.http import sanitize_method

DJANGO_MIDDLEWARE = (
    "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
)
GATE = "monitoring.apm.sampling.TracingGate"
# Set while the gate serves a request it chose to sample. A contextvar of our own, not a value
# of OpenTelemetry's context: the middleware starts the request's span in the context it
# extracts from the headers, a new one, which would not carry it.
sampled_root: ContextVar[bool] = ContextVar("apm_sampled_root", default=False)


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
        if sampled_root.get():
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"GateSampler{{{self._ratio.get_description()}}}"


class TracedRequests(_DjangoMiddleware):
    """OpenTelemetry's Django middleware, for the requests the gate samples, minus its second
    URL resolution: it names the span `<method> <route>` from a resolution of its own, before
    Django's (about 60 µs for the shop's URLs). Here the span starts named by its method and
    gets its route (name and `http.route`) from Django's resolution as the response passes, so
    the gate needs no `process_view` hook, which Django would call for every request. A request
    answered without resolving a view (a 404; a 403 or 429 of the security middleware) keeps
    the method alone as its name.

    Not kept from the middleware's own `process_view`: the route in its HTTP metrics'
    attributes; no meter provider is set, those metrics go nowhere."""

    @staticmethod
    def _get_span_name(request) -> str:
        method = sanitize_method(request.method.strip())
        return "HTTP" if method == "_OTHER" else method

    def process_response(self, request, response):
        span = request.META.get(self._environ_span_key)
        match = getattr(request, "resolver_match", None)
        if span is not None and match is not None and span.is_recording():
            route = getattr(match, "route", None)
            if route:
                span.set_attribute(HTTP_ROUTE, route)
            name = route or getattr(match, "url_name", None)
            if name and span.name != "HTTP":
                span.update_name(f"{span.name} {name}")
        return super().process_response(request, response)


class TracingGate:
    """In MIDDLEWARE where OpenTelemetry's Django middleware was (init_tracing puts it there)."""

    ratio = 1.0  # set by init_tracing

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.traced = TracedRequests(get_response)

    def __call__(self, request):
        header = request.META.get("HTTP_TRACEPARENT")
        if header is not None:
            caller = extract(request.META, getter=wsgi_getter)
            span_context = get_current_span(caller).get_span_context()
            if span_context.is_valid:
                if span_context.trace_flags.sampled:
                    request._apm_traced = True
                    return self.traced(request)
                return self._not_sampled(request, caller)
        if random.random() < self.ratio:
            request._apm_traced = True
            token = sampled_root.set(True)
            try:
                return self.traced(request)
            finally:
                sampled_root.reset(token)
        return self._not_sampled(request, None)

    def _not_sampled(self, request, caller):
        # Not suppress_instrumentation(): the same context value without its generator, a
        # quarter of the cost (about 1 µs against 4).
        token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, caller))
        try:
            return self.get_response(request)
        finally:
            context.detach(token)

    # Django calls this hook of the middleware in its list (the gate), on an exception only:
    # the traced request's span records it as OpenTelemetry's would.
    def process_exception(self, request, exception):
        if getattr(request, "_apm_traced", False):
            return self.traced.process_exception(request, exception)
        return None


def install_gate(middleware: list[str], ratio: float) -> None:
    """Put the gate in place of OpenTelemetry's Django middleware (in the settings' list)."""
    TracingGate.ratio = ratio
    if DJANGO_MIDDLEWARE in middleware:
        middleware[middleware.index(DJANGO_MIDDLEWARE)] = GATE
