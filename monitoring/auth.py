"""Who may read monitoring data: a staff session, or `Authorization: Bearer <MONITORING_TOKEN>`.

Refusals: 401 with `WWW-Authenticate: Bearer` when the caller is nobody (no credentials, or a
wrong token of either kind); 403 when a signed-in user is not staff.
"""

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

CHALLENGE = 'Bearer realm="monitoring"'


def bearer_token_ok(request: HttpRequest) -> bool:
    return authorization_has_token(request.META.get("HTTP_AUTHORIZATION", ""))


def authorization_has_token(header: str) -> bool:
    """An `Authorization` header value carries `Bearer <MONITORING_TOKEN>` (outside Django
    too: the Celery worker's metrics endpoint checks it the same way)."""
    expected = settings.MONITORING_TOKEN
    if not expected:
        return False
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


class MonitoringTokenAuthentication(BaseAuthentication):
    """`Bearer <MONITORING_TOKEN>` for DRF: the right token authenticates (as no user), a wrong
    one is a 401; other schemes are left to the shop's token and session classes."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.partition(" ")[0].lower() != "bearer":
            return None
        if not bearer_token_ok(request):
            raise AuthenticationFailed("Invalid monitoring token.")
        return AnonymousUser(), "monitoring-token"

    def authenticate_header(self, request) -> str:
        return CHALLENGE


# The monitoring views' authentication: the bearer first, so its challenge is the one sent.
MONITORING_AUTHENTICATION = [
    MonitoringTokenAuthentication,
    TokenAuthentication,
    SessionAuthentication,
]
