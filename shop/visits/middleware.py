"""Counts unique visitors per day, without a database write per request.

A browser that keeps cookies is counted once a day (the day marker lives in its cookie); a
client that keeps none is counted by address and user agent, so 1,200 requests from one
script are one visitor. The count itself is shop/visits/counting.py's.
"""

import secrets

from django.utils import timezone

COOKIE = "pp_visitor"
SKIP_PREFIXES = (
    "/api/health/",
    "/api/monitoring/",
    "/api/rum/",  # beacons: the page view they report was counted already
    "/rum.js",
    "/static/",
    "/admin/jsi18n/",
)

# The monitor's synthetic checks (monitoring/synthetic/probe.py's USER_AGENT) are not visitors.
SYNTHETIC_AGENT = "pasargad-synthetic/"


class VisitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(SKIP_PREFIXES) or request.META.get(
            "HTTP_USER_AGENT", ""
        ).startswith(SYNTHETIC_AGENT):
            return response
        today = timezone.localdate()
        if request.COOKIES.get(COOKIE + "_day") == today.isoformat():
            return response  # counted today already
        key = request.COOKIES.get(COOKIE, "")
        if not (16 <= len(key) <= 64 and key.isalnum()):
            key = ""  # none, or forged: counted as a cookie-less client
            response.set_cookie(
                COOKIE, secrets.token_hex(16), max_age=365 * 86400, httponly=True, samesite="Lax"
            )
        from shop.visits.services import visit_record

        user = getattr(request, "user", None)
        visit_record(
            day=today,
            cookie=key,
            address=request.META.get("REMOTE_ADDR", ""),
            agent=request.META.get("HTTP_USER_AGENT", ""),
            user_id=user.pk if user is not None and user.is_authenticated else None,
        )
        response.set_cookie(COOKIE + "_day", today.isoformat(), max_age=86400, samesite="Lax")
        return response
