"""Dashboard: the notification recorded in the monitor's own state store (never the shop's
database, so it is recorded while PostgreSQL is down), for the web dashboard to list.

The row's body is the webhook v4 document (the same shape the app's Alertmanager receiver gets
at scale); its idempotency key is unique, so a repeated delivery is one row.
"""

from __future__ import annotations

import sqlite3
import time

from monitoring.monitor.state import StateStore
from monitoring.notify.channels.webhook import webhook_body
from monitoring.notify.content import title, worst_severity
from monitoring.notify.notification import Delivery, Notification

__all__ = ["DashboardChannel"]


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
                body=webhook_body(notification),
                created_at_ms=round(time.time() * 1000),
            )
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full
            return Delivery.retryable(f"dashboard: {exc}")
        return Delivery.ok()

    def close(self) -> None:
        pass  # the state store belongs to the monitor, which closes it
