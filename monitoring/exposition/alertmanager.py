"""The app's receiver for real Alertmanager (at-scale mode): webhook v4 JSON, bearer
MONITORING_TOKEN.

  POST /api/monitoring/alertmanager/            recorded in the dashboard records
  POST /api/monitoring/alertmanager/dashboard   the same (the shipped `dashboard` receiver)
  POST /api/monitoring/alertmanager/sms         sent through the SMS channel (`oncall`)

The dashboard records are the monitor's state store (the dashboard channel's), so the web
dashboard shows notifications the same whether the embedded notifier or Alertmanager sent them.
Every path also records the webhook's alerts in that store's alert history
(``StateStore.alerts_received``: one firing and one resolution per episode, however often
Alertmanager repeats it or however many receivers get it), before the channel is tried; a
history that cannot be written is logged and the channel still delivers (an SMS must not wait
on the state file; the dashboard record, in the same file, then fails and is retried).
Answers: 200 done; 400 malformed JSON or webhook document (the reason in `error`); 401 without
the token; 413 past MAX_WEBHOOK_BYTES; 503 when the channel is not configured and 502 when it
failed (Alertmanager retries on 5xx, so nothing is dropped).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from monitoring.auth import bearer_token_ok
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.state import StateStore
from monitoring.notify.channels import ChannelConfigError, channel_from_env
from monitoring.notify.channels.webhook import notification_from_webhook
from monitoring.notify.notification import Notification

__all__ = ["MAX_WEBHOOK_BYTES", "alertmanager_receiver"]

logger = logging.getLogger(__name__)

# Alertmanager sends a whole group in one webhook, and refused (4xx) it does not retry: a
# group of thousands of alerts (LowStock over a large catalog) is several MB, more than
# Django's 2.5 MB default for a request body. This bound is ~100,000 alerts.
MAX_WEBHOOK_BYTES = 64 << 20


@csrf_exempt
@require_POST
def alertmanager_receiver(request: HttpRequest, channel: str = "dashboard") -> JsonResponse:
    if not bearer_token_ok(request):
        response = JsonResponse({"error": "bearer token required"}, status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"error": "invalid Content-Length"}, status=400)
    if length > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": f"larger than {MAX_WEBHOOK_BYTES} bytes"}, status=413)
    try:
        # read(), not .body: .body refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
        notification = notification_from_webhook(json.loads(request.read()))
    except ValueError as exc:  # json's JSONDecodeError is a ValueError too
        return JsonResponse({"error": f"not an Alertmanager webhook (v4): {exc}"}, status=400)
    try:
        sender = channel_from_env(channel)
    except ChannelConfigError as exc:
        return JsonResponse({"error": f"{channel} channel not configured: {exc}"}, status=503)
    # The dashboard's state store, opened for us; the other channels have none.
    store = getattr(sender, "store", None)
    try:
        _history_record(notification, store)
        delivery = sender.send(notification)
    finally:
        sender.close()
        if store is not None:
            store.close()
    if not delivery.delivered:
        return JsonResponse({"error": delivery.reason}, status=502)
    return JsonResponse({"status": "ok", "idempotencyKey": notification.idempotency_key})


def _history_record(notification: Notification, store: StateStore | None) -> None:
    """The webhook's alerts into the alert history; a failure is logged, never raised."""
    own = store is None
    try:
        if store is None:
            store = StateStore(settings_from_env(dict(os.environ)).state_path)
        store.alerts_received(notification.alerts, at_ms=round(time.time() * 1000))
    except (sqlite3.Error, OSError):
        logger.exception(
            "could not record the alerts of %s's notification in the alert history",
            notification.receiver,
        )
    finally:
        if own and store is not None:
            store.close()
