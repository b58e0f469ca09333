"""Who may see the dashboard: a staff session, or the monitoring bearer token
(monitoring.auth). Pages send an anonymous visitor to the staff login; the JSON views answer
401 (with the Bearer challenge) to nobody and 403 to a signed-in user who is not staff."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from monitoring.auth import CHALLENGE, bearer_token_ok

__all__ = ["staff_api", "staff_page"]

LOGIN_URL = "/admin/login/"  # Django's admin login admits staff accounts only


def _signed_in(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated)


def _allowed(request: HttpRequest) -> bool:
    return bearer_token_ok(request) or (_signed_in(request) and request.user.is_staff)


def staff_page(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if _allowed(request):
            return view(request, *args, **kwargs)
        if not _signed_in(request):
            return redirect_to_login(request.get_full_path(), LOGIN_URL)
        return render(request, "dashboard/refused.html", status=403)

    return wrapped


def staff_api(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if _allowed(request):
            return view(request, *args, **kwargs)
        if not _signed_in(request):
            response = JsonResponse(
                {"error": "staff session or monitoring token required"}, status=401
            )
            response["WWW-Authenticate"] = CHALLENGE
            return response
        return JsonResponse({"error": "staff only"}, status=403)

    return wrapped
