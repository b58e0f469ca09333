"""Who may read monitoring data: a staff session, or `Authorization: Bearer <MONITORING_TOKEN>`."""

import hmac

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import BasePermission


def bearer_token_ok(request: HttpRequest) -> bool:
    expected = settings.MONITORING_TOKEN
    if not expected:
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # Constant-time comparison: the token must not leak through response timing.
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def is_monitoring_reader(request: HttpRequest) -> bool:
    if bearer_token_ok(request):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


class IsMonitoringReader(BasePermission):
    """DRF permission for the detailed health and metric endpoints."""

    message = "Monitoring data needs a staff session or the monitoring bearer token."

    def has_permission(self, request, view) -> bool:
        return is_monitoring_reader(request._request if hasattr(request, "_request") else request)
