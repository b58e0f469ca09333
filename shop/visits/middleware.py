"""Counts unique visitors per day (cookie-based), once per visitor per day."""

import secrets

from django.utils import timezone

COOKIE = "pp_visitor"
SKIP_PREFIXES = ("/api/health/", "/api/monitoring/", "/static/", "/admin/jsi18n/")


class VisitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(SKIP_PREFIXES):
            return response
        key = request.COOKIES.get(COOKIE, "")
        if not (16 <= len(key) <= 64 and key.isalnum()):
            key = secrets.token_hex(16)
            response.set_cookie(COOKIE, key, max_age=365 * 86400, httponly=True, samesite="Lax")
        today = timezone.localdate()
        # Only the first request of the day from a visitor writes; the marker lives in the cookie.
        day_cookie = request.COOKIES.get(COOKIE + "_day")
        if day_cookie != today.isoformat():
            from shop.visits.services import visit_record

            user = getattr(request, "user", None)
            visit_record(
                day=today,
                visitor_key=key,
                user_id=user.pk if user is not None and user.is_authenticated else None,
            )
            response.set_cookie(COOKIE + "_day", today.isoformat(), max_age=86400, samesite="Lax")
        return response
