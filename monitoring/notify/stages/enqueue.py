"""The outbox stage: every notification becomes a row before any delivery is tried.

One row per integration of the receiver (an integration without `send_resolved` gets the
firing alerts only, and nothing when none fire), written in one transaction with the
receiver's notification log entry: the notification is either due and recorded as sent, or
neither. A flush collects its chunk's writes (`FlushContext.outbox_writes`) and writes them
together after the chunk's groups ran. The delivery worker (`monitoring.notify.outbox.Deliverer`) takes it from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from monitoring.monitor.state import OutboxRow, OutboxWrite, StateStore
from monitoring.notify.integrations import Integration
from monitoring.notify.notification import FIRING, Notification, NotifiedAlert
from monitoring.notify.outbox import notification_payload
from monitoring.notify.stages.context import FlushContext


class OutboxStage:
    def __init__(
        self,
        store: StateStore,
        integrations: dict[str, list[Integration]],
        *,
        links: dict[str, str],
        deadline_ms: int,
        wake: Callable[[list[OutboxRow]], None] = lambda rows: None,
    ) -> None:
        self.store = store
        self.integrations = integrations
        self.links = links  # external_url, dashboard_url, runbook_base_url
        self.deadline_ms = deadline_ms
        self.wake = wake  # hands the rows written to the delivery worker

    def run(self, ctx: FlushContext, alerts: list[NotifiedAlert]) -> list[NotifiedAlert]:
        if not alerts or ctx.log_entry is None:
            return []
        rows = []
        for integration in self.integrations.get(ctx.receiver, []):
            mine = (
                alerts if integration.send_resolved else [a for a in alerts if a.status == FIRING]
            )
            if not mine:
                continue
            truncated = 0
            if integration.max_alerts and len(mine) > integration.max_alerts:
                truncated = len(mine) - integration.max_alerts
                mine = mine[: integration.max_alerts]
            notification = Notification(
                receiver=ctx.receiver,
                group_key=ctx.group_key,
                alerts=tuple(mine),
                group_labels=dict(ctx.group_labels),
                sequence=ctx.log_entry.sequence,
                truncated_alerts=truncated,
                **self.links,
            )
            rows.append(
                {
                    "idempotency_key": notification.idempotency_key,
                    "receiver": ctx.receiver,
                    "integration": integration.name,
                    "kind": integration.kind,
                    "payload": notification_payload(notification),
                    "created_ms": ctx.now_ms,
                    "deadline_ms": ctx.now_ms + self.deadline_ms,
                    "notification": notification,  # handed to the sender, not stored
                }
            )
        log = ctx.log_entry
        if log.sent_ms != ctx.now_ms:
            log = replace(log, sent_ms=ctx.now_ms)
        write = OutboxWrite(rows, log)
        if ctx.outbox_writes is not None:
            ctx.outbox_writes.append(write)  # the flush writes its chunk in one statement
            return alerts
        written = self.store.outbox_enqueue_many([write])
        if written:
            self.wake(written)
        return alerts
