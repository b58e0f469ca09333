"""POST /api/rum/: one beacon from rum.js. Answers 204; 4xx with the reason for bad input."""

from __future__ import annotations

import json
import logging
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from monitoring.http.middleware import client_ip
from monitoring.rum.beacon import BeaconInvalid, beacon_parse
from monitoring.rum.metrics import REJECTED, beacon_record, page_label
from monitoring.rum.ratelimit import RateLimiter

logger = logging.getLogger("monitoring.rum")

MAX_BODY = 4096


@cache
def _limiter() -> RateLimiter:
    return RateLimiter(per_minute=settings.RUM_RATE_PER_MINUTE)


def _refuse(status: int, reason: str, code: str, **headers: str) -> JsonResponse:
    REJECTED.labels("too_large" if status == 413 else code).inc()
    response = JsonResponse({"detail": reason, "code": code}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


# A beacon carries no cookie-authenticated action (sendBeacon cannot send a CSRF token).
@csrf_exempt
@require_POST
def rum_beacon(request: HttpRequest) -> HttpResponse:
    if not settings.RUM_ENABLED:
        return JsonResponse({"detail": "RUM is off.", "code": "not_found"}, status=404)
    limiter = _limiter()
    if not limiter.allow(client_ip(request)):
        retry = str(limiter.retry_after_s())
        return _refuse(429, "Too many beacons.", "rate_limited", Retry_After=retry)
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY or len(request.body) > MAX_BODY:
        return _refuse(413, f"A beacon is at most {MAX_BODY} bytes.", "invalid")
    content_type = request.content_type or ""
    if content_type not in ("application/json", "text/plain"):  # text/plain: old sendBeacon
        return _refuse(415, "Send application/json.", "invalid")
    try:
        beacon = beacon_parse(json.loads(request.body or b"null"))
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, BeaconInvalid) else "body is not valid JSON"
        return _refuse(400, reason, "invalid")
    beacon_record(beacon)
    if beacon.error_messages:
        # The messages go to the log, never into labels (unbounded text).
        logger.info(
            "browser reported %d JavaScript errors on %s",
            beacon.errors,
            page_label(beacon.page),
            extra={"rum_errors": list(beacon.error_messages)},
        )
    return HttpResponse(status=204)
