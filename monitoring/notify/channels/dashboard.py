"""Dashboard: the notification recorded in the monitor's own state store (never the shop's
database, so it is recorded while PostgreSQL is down), for the web dashboard to list.

The row's body is the webhook v4 document (the same shape the app's Alertmanager receiver gets
at scale) plus the alerts' values; its idempotency key is unique, so a repeated delivery is one
row.
"""

from __future__ import annotations

import math
import sqlite3
import time

from monitoring.monitor.state import StateStore
from monitoring.notify.channels.webhook import webhook_body
from monitoring.notify.content import title, worst_severity
from monitoring.notify.notification import Delivery, Notification

__all__ = ["DashboardChannel", "dashboard_body"]


def dashboard_body(notification: Notification) -> dict:
    """The webhook v4 document plus ``values``: each alert's current value by fingerprint
    (the webhook has none; the dashboard shows it), finite ones only."""
    values = {
        a.fingerprint: a.value
        for a in notification.alerts
        if a.value is not None and math.isfinite(a.value)  # JSON has no NaN or Inf
    }
    return {**webhook_body(notification), "values": values}


class DashboardChannel:
    kind = "dashboard"

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def send(self, notification: Notification) -> Delivery:
        try:
            self.store.dashboard_notification_add(
                idempotency_key=notification.idempotency_key,
                receiver=notification.receiver,
                group_key=notification.group_key,
                status=notification.status,
                severity=worst_severity(notification),
                title=title(notification),
                body=dashboard_body(notification),
                created_at_ms=round(time.time() * 1000),
            )
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full
            return Delivery.retryable(f"dashboard: {exc}")
        return Delivery.ok()

    def close(self) -> None:
        pass  # the state store belongs to the monitor, which closes it
