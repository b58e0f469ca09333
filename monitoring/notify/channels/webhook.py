"""Generic webhook: Alertmanager's webhook JSON, version "4", so existing receivers work.

The body is Alertmanager 0.25's ``Message`` (template data + ``version``, ``groupKey``,
``truncatedAlerts``) with one extra top-level field, ``idempotencyKey`` (also sent as the
``Idempotency-Key`` header): receivers that do not know it ignore it, and one that does can drop
the repeat a crash between sending and recording can cause.
"""

from __future__ import annotations

import orjson

from monitoring.notify.channels._http import Done, HttpClient, wait_for_outcome
from monitoring.notify.notification import Delivery, Notification, NotifiedAlert
from monitoring.rules.gofmt import parse_rfc3339_ms, rfc3339_or_zero

__all__ = ["WebhookChannel", "notification_from_webhook", "webhook_body"]


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


def notification_from_webhook(document: dict) -> Notification:
    """The inverse of ``webhook_body``: what real Alertmanager (or another of our monitors)
    posts to a webhook receiver, as a ``Notification``. ``ValueError`` names the first problem.

    The wire has no ``sequence`` and no values: the parsed notification's key equals the
    sender's for sequence 0, so an Alertmanager repeat of the same states has the same key."""
    try:
        if document.get("version") != "4":
            raise ValueError(f'version {document.get("version")!r}, expected "4"')
        alerts = tuple(
            NotifiedAlert(
                labels=_strings(a["labels"], "labels"),
                annotations=_strings(a.get("annotations") or {}, "annotations"),
                status=_status(a["status"]),
                starts_at_ms=parse_rfc3339_ms(a["startsAt"]) or 0,
                ends_at_ms=parse_rfc3339_ms(a["endsAt"]) if a["status"] == "resolved" else None,
                generator_url=str(a.get("generatorURL") or ""),
            )
            for a in document["alerts"]
        )
        return Notification(
            receiver=str(document["receiver"]),
            group_key=str(document["groupKey"]),
            alerts=alerts,
            group_labels=_strings(document.get("groupLabels") or {}, "groupLabels"),
            external_url=str(document.get("externalURL") or ""),
            truncated_alerts=int(document.get("truncatedAlerts") or 0),
        )
    except KeyError as exc:
        raise ValueError(f"missing field {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"malformed webhook document: {exc}") from None


def _strings(mapping: dict, what: str) -> dict[str, str]:
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ValueError(f"{what} must map strings to strings")
    return dict(mapping)


def _status(value: str) -> str:
    if value not in ("firing", "resolved"):
        raise ValueError(f"alert status {value!r}, expected firing or resolved")
    return value


class WebhookChannel:
    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})  # e.g. the app receiver's Authorization
        self._client = HttpClient(timeout_s)

    def start_send(self, notification: Notification, done: Done) -> None:
        body = orjson.dumps(webhook_body(notification))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.idempotency_key,
            **self.headers,
        }
        self._client.start_post(self.url, body, headers, "webhook", done)

    def send(self, notification: Notification) -> Delivery:
        return wait_for_outcome(lambda done: self.start_send(notification, done))

    def close(self) -> None:
        self._client.close()
