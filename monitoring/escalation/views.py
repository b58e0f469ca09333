"""The customer-facing status: ``/status/`` (public page) and ``/api/status/`` (JSON), and the
``status_notice`` context processor storefront templates render as a banner."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from monitoring.escalation.status import status_notice

__all__ = ["status_notice_context", "status_api", "status_page"]


def status_notice_context(request: HttpRequest) -> dict:
    """Context processor: ``status_notice`` (title, message, since) or None."""
    return {"status_notice": status_notice()}


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    response = render(request, "monitoring/status.html", {"notice": status_notice()})
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def status_api(request: HttpRequest) -> JsonResponse:
    notice = status_notice()
    response = JsonResponse({"status": "disrupted" if notice else "operational", "notice": notice})
    response["Cache-Control"] = "no-cache"
    return response
