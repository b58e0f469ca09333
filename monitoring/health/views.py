"""Health endpoints: thin views over `checks`.

`/api/health/` is public and cheap: a plain Django view (no DRF, no throttling) that says only
ok or not. The database check behind it (`checks.database_reachable`, which `database_up`
exports too) runs at most once per HEALTH_BASIC_CACHE_SECONDS per process; probes in between
get the last answer.

A probe that finds a component down answers 503 and logs a WARNING on `monitoring.health`,
not Django's ERROR for a 5xx: the probe itself worked, and the outage it saw has its own
alerts (DatabaseDown, RedisDown, CeleryBrokerDown, CeleryWorkersDown). At ERROR every probe of
a load balancer (one every few seconds) would count towards HighLogErrorRate and page a second
time for it, as an application fault that is not one.
"""

from __future__ import annotations

import logging
import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.auth import MONITORING_AUTHENTICATION, IsMonitoringReader
from monitoring.collectors import collectors
from monitoring.health.checks import (
    DISABLED,
    OK,
    database_reachable,
    health_checks,
    overall_status,
    run_checks,
)

logger = logging.getLogger("monitoring.health")


def probe_failed(response: HttpResponse, failing: str, path: str) -> HttpResponse:
    """`response` (a 503), logged once at WARNING instead of django.request's ERROR."""
    logger.warning("Health probe %s: %s", path, failing, extra={"status_code": 503})
    response._has_been_logged = True  # Django's log_response skips a logged response
    return response


@never_cache
def health_basic(request: HttpRequest) -> JsonResponse:
    if database_reachable():
        return JsonResponse({"status": "ok"})
    response = JsonResponse({"status": "unavailable"}, status=503)
    return probe_failed(response, "database unreachable", request.path)


def system_summary() -> dict:
    """The host figures the specification's alert rules watch, beside the component checks."""
    reading = collectors().system.snapshot()
    return {
        "cpu_usage_percent": reading["cpu_usage_percent"],
        "memory_usage_percent": reading["memory_usage_percent"],
        "disk_usage_percent": {m: d["usage_percent"] for m, d in reading["disks"].items()},
        "load_average_1m": reading["load_average_1m"],
    }


class _MonitoringView(APIView):
    authentication_classes = MONITORING_AUTHENTICATION
    permission_classes = [IsMonitoringReader]
    throttle_classes: list = []  # probes are never throttled


def _http_status(results) -> int:
    return 200 if all(r.status in (OK, DISABLED) for r in results) else 503


def _answer(request: Request, body: dict, results) -> Response:
    response = Response(body, status=_http_status(results))
    if response.status_code == 503:
        failing = ", ".join(
            f"{r.name} {r.status}: {r.error}" for r in results if r.status not in (OK, DISABLED)
        )
        probe_failed(response, failing, request.path)
    return response


_HEALTH_RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description="every enabled component is ok"),
    503: OpenApiResponse(OpenApiTypes.OBJECT, description="a component is degraded or down"),
}


class HealthDetailedView(_MonitoringView):
    @extend_schema(
        responses=_HEALTH_RESPONSES,
        description="Status (ok / degraded / down / disabled), latency and facts per component.",
    )
    def get(self, request: Request) -> Response:
        started = time.perf_counter()
        results = run_checks(health_checks())
        body = {
            "status": overall_status(results),
            "timestamp": timezone.now().isoformat(),
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "components": {r.name: r.as_dict() for r in results},
            "metrics": system_summary(),
        }
        return _answer(request, body, results)


class HealthComponentView(_MonitoringView):
    component = ""

    @extend_schema(responses=_HEALTH_RESPONSES, description="One component's health check.")
    def get(self, request: Request) -> Response:
        checks = [check for check in health_checks() if check.name == self.component]
        (result,) = run_checks(checks)
        body = {"component": result.name, **result.as_dict()}
        return _answer(request, body, [result])
