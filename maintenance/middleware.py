"""Answers customers 503 while the shop is in maintenance (maintenance.mode).

Still served: the health endpoints (load balancers and the monitor must see the app up), the
monitoring endpoints (Prometheus keeps scraping), the admin (staff log in there) and static
files, and every request of an active staff user, by session or by `Authorization: Token`.
Everyone else gets the HTML maintenance page, or under `/api/` the API's error shape
`{"detail", "code": "maintenance"}`; both 503 with Retry-After.

It sits after AuthenticationMiddleware (the session's user) and before the visit middleware (no
visit is written for a refused request). Who is staff is only asked while maintenance is on,
and a database that cannot answer makes the caller a customer, not a 500.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

from maintenance.mode import Mode, current

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# The status page and acknowledgement links (docs/escalation.md) work through maintenance too.
EXEMPT_PREFIXES = (
    "/api/health/",
    "/api/monitoring/",
    "/admin/",
    "/status/",
    "/api/status/",
    "/ack/",
)
CODE = "maintenance"


def is_exempt(path: str) -> bool:
    static = "/" + settings.STATIC_URL.lstrip("/")
    # Also without the trailing slash, so CommonMiddleware's redirect to it is not refused.
    return path.startswith((*EXEMPT_PREFIXES, static)) or path + "/" in EXEMPT_PREFIXES


def is_staff(request: HttpRequest) -> bool:
    """An active staff user by session, or by the DRF token the request carries."""
    try:
        user = getattr(request, "user", None)
        if user is not None and user.is_active and user.is_staff:
            return True
        return _token_user_is_staff(request.META.get("HTTP_AUTHORIZATION", ""))
    except DatabaseError:
        return False


def _token_user_is_staff(header: str) -> bool:
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return False
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key.strip()).first()
    return token is not None and token.user.is_active and token.user.is_staff


def maintenance_response(request: HttpRequest, mode: Mode) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        response: HttpResponse = JsonResponse({"detail": mode.message, "code": CODE}, status=503)
    else:
        html = render_to_string(
            "maintenance/maintenance.html",
            {"message": mode.message, "retry_after": mode.retry_after},
        )
        response = HttpResponse(html, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(mode.retry_after)
    response["Cache-Control"] = "no-store"
    # An expected 503, not a server error: the access log records it, but Django must not log
    # it at ERROR (log_errors_total{logger="django.request"} feeds the error alerts).
    response._has_been_logged = True
    return response


def _set_route(request: HttpRequest) -> None:
    # The view is never reached; resolving lets the request metrics label the 503 with its
    # route rather than `<unmatched>`.
    try:
        request.resolver_match = resolve(request.path_info)
    except Resolver404:
        pass


class MaintenanceModeMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        mode = current()
        if not mode.enabled or is_exempt(request.path) or is_staff(request):
            return self.get_response(request)
        _set_route(request)
        return maintenance_response(request, mode)
