"""POST /api/rum/: one beacon from rum.js. Answers 204; 4xx with the reason for bad input."""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from monitoring.http.middleware import client_ip
from monitoring.rum.beacon import BeaconInvalid, beacon_parse
from monitoring.rum.metrics import REJECTED, beacon_record, page_label
from security.middleware import windows

logger = logging.getLogger("monitoring.rum")

MAX_BODY = 4096


def _wait_s(client: str) -> int:
    """Seconds until `client` may send another beacon (0: now): RUM_RATE_PER_MINUTE a sliding
    minute, counted in the security rate limit's file, so exactly across the host's workers."""
    allowed, _, wait = windows().hit(
        "rum:" + client, int(settings.RUM_RATE_PER_MINUTE), 60.0, time.time()
    )
    return 0 if allowed else max(1, wait)


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
    wait = _wait_s(client_ip(request))
    if wait:
        return _refuse(429, "Too many beacons.", "rate_limited", Retry_After=str(wait))
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
