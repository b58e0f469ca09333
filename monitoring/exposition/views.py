"""JSON metric endpoints, one per category: the collectors' snapshots, behind monitoring auth."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.auth import IsMonitoringReader
from monitoring.collectors import collectors
from monitoring.http.snapshot import application_snapshot


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
            **application_snapshot(),
            "celery": found.celery.snapshot() if found.celery else _disabled(),
        }
    raise ValueError(category)


CATEGORIES = ("system", "database", "redis", "application", "business")


class CategoryMetricsView(APIView):
    permission_classes = [IsMonitoringReader]
    throttle_classes: list = []
    category = ""

    def get(self, request: Request) -> Response:
        body = {
            "category": self.category,
            "timestamp": timezone.now().isoformat(),
            **category_snapshot(self.category),
        }
        return Response(body)
