"""JSON metric endpoints, one per category: the collectors' snapshots, behind monitoring auth."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.auth import MONITORING_AUTHENTICATION, IsMonitoringReader
from monitoring.collectors import collectors
from monitoring.http.snapshot import application_snapshot
from monitoring.metrics import exposition


def _disabled() -> dict:
    return {"status": "disabled", "reason": "REDIS_URL is not set"}


def category_snapshot(category: str) -> dict:
    found = collectors()
    if category == "system":
        return found.system.snapshot()
    if category == "database":
        return found.database.snapshot()
    if category == "business":
        return found.business.snapshot()
    if category == "redis":
        return found.redis.snapshot() if found.redis else _disabled()
    if category == "application":
        return {
            **application_snapshot(),  # totals by kind, with units in the names
            "metrics": application_metrics(),
            "celery": found.celery.snapshot() if found.celery else _disabled(),
        }
    raise ValueError(category)


# Request, user, order, payment and task metrics (monitoring.http, monitoring.collectors.celery).
APPLICATION_PREFIXES = (
    "http_",
    "active_users",
    "user_",
    "orders_",
    "payments_",
    "reorder_alerts",
    "celery_task",
)


def application_metrics() -> dict:
    """The application's counters and histograms as the Prometheus endpoint shows them
    (aggregated over every worker process); histograms as their count and sum."""
    found = {}
    for family in text_string_to_metric_families(exposition().decode()):
        if not family.name.startswith(APPLICATION_PREFIXES):
            continue
        series = [
            {"sample": s.name, "labels": s.labels, "value": s.value}
            for s in family.samples
            if family.type != "histogram" or s.name.endswith(("_count", "_sum"))
        ]
        found[family.name] = {"type": family.type, "help": family.documentation, "series": series}
    return found


CATEGORIES = ("system", "database", "redis", "application", "business")


class CategoryMetricsView(APIView):
    authentication_classes = MONITORING_AUTHENTICATION
    permission_classes = [IsMonitoringReader]
    throttle_classes: list = []
    category = ""

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        description="One category's readings; units in the field names (docs/metrics.md).",
    )
    def get(self, request: Request) -> Response:
        body = {
            "category": self.category,
            "timestamp": timezone.now().isoformat(),
            **category_snapshot(self.category),
        }
        return Response(body)
