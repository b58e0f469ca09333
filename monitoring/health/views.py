"""Health endpoints: thin views over `checks`.

`/api/health/` is public and cheap: a plain Django view (no DRF, no throttling) that says only
ok or not. The database check behind it (`checks.database_reachable`, which `database_up`
exports too) runs at most once per HEALTH_BASIC_CACHE_SECONDS per process; probes in between
get the last answer.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, JsonResponse
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


@never_cache
def health_basic(request: HttpRequest) -> JsonResponse:
    if database_reachable():
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "unavailable"}, status=503)


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
        return Response(body, status=_http_status(results))


class HealthComponentView(_MonitoringView):
    component = ""

    @extend_schema(responses=_HEALTH_RESPONSES, description="One component's health check.")
    def get(self, request: Request) -> Response:
        checks = [check for check in health_checks() if check.name == self.component]
        (result,) = run_checks(checks)
        body = {"component": result.name, **result.as_dict()}
        return Response(body, status=_http_status([result]))
