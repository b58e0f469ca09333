"""Generic webhook: Alertmanager's webhook JSON, version "4", so existing receivers work.

The body is Alertmanager 0.25's ``Message`` (template data + ``version``, ``groupKey``,
``truncatedAlerts``) with one extra top-level field, ``idempotencyKey`` (also sent as the
``Idempotency-Key`` header): receivers that do not know it ignore it, and one that does can drop
the repeat a crash between sending and recording can cause.
"""

from __future__ import annotations

import json

import httpx

from monitoring.notify.channels._http import http_client, http_send
from monitoring.notify.notification import Delivery, Notification, NotifiedAlert
from monitoring.rules.gofmt import rfc3339_or_zero

__all__ = ["WebhookChannel", "webhook_body"]


def webhook_body(notification: Notification) -> dict:
    """The JSON document Alertmanager 0.25 posts, plus ``idempotencyKey``."""
    n = notification
    return {
        "receiver": n.receiver,
        "status": n.status,
        "alerts": [_alert(a) for a in n.alerts],
        "groupLabels": dict(n.group_labels),
        "commonLabels": n.common_labels,
        "commonAnnotations": n.common_annotations,
        "externalURL": n.external_url,
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.truncated_alerts,
        "idempotencyKey": n.idempotency_key,
    }


def _alert(alert: NotifiedAlert) -> dict:
    return {
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339_or_zero(alert.starts_at_ms),
        "endsAt": rfc3339_or_zero(alert.ends_at_ms),  # Go's zero time while firing
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


class WebhookChannel:
    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})  # e.g. the app receiver's Authorization
        self._client = http_client(transport, timeout_s)

    def send(self, notification: Notification) -> Delivery:
        request = self._client.build_request(
            "POST",
            self.url,
            content=json.dumps(webhook_body(notification)).encode(),
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": notification.idempotency_key,
                **self.headers,
            },
        )
        return http_send(self._client, request, "webhook")

    def close(self) -> None:
        self._client.close()
