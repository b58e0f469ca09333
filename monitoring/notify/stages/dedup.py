"""Dedup against the notification log: send only what the receiver has not been told.

Alertmanager's nflog semantics (notify.go's DedupStage.needsUpdate): a group is sent when its
firing set has an alert the last notification did not have, when all alerts resolved after
some were told firing, when the resolved set grew and the receiver wants resolved notices, or
when `repeat_interval` has passed since the last notification. A resolved alert is only ever
sent to a receiver that was told it was firing.
"""

from __future__ import annotations

from monitoring.monitor.state import LogEntry, StateStore
from monitoring.notify.notification import FIRING, NotifiedAlert
from monitoring.notify.stages.context import FlushContext


def needs_update(
    entry: LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    *,
    send_resolved: bool,
    repeat_interval_ms: int,
    now_ms: int,
) -> str:
    """Why the group is sent now ("" when it is not): a pure function of the log entry."""
    if entry is None:
        return "first notification" if firing else ""
    if not firing <= entry.firing:
        return "new firing alerts"
    if not firing:
        return "all resolved" if entry.firing else ""
    if send_resolved and not resolved <= entry.resolved:
        return "new resolved alerts"
    if entry.sent_ms <= now_ms - repeat_interval_ms:
        return "repeat interval passed"
    return ""


class DedupStage:
    def __init__(self, store: StateStore, send_resolved: dict[str, bool]) -> None:
        self.store = store
        self.send_resolved = send_resolved  # receiver → whether any integration wants them

    def run(self, ctx: FlushContext, alerts: list[NotifiedAlert]) -> list[NotifiedAlert]:
        entry = self.store.notification_log_get(receiver=ctx.receiver, group_key=ctx.group_key)
        told = entry.firing if entry else frozenset()
        firing_alerts = [a for a in alerts if a.status == FIRING]
        resolved_alerts = [a for a in alerts if a.status != FIRING and a.fingerprint in told]
        firing = frozenset(a.fingerprint for a in firing_alerts)
        resolved = frozenset(a.fingerprint for a in resolved_alerts)
        reason = needs_update(
            entry,
            firing,
            resolved,
            send_resolved=self.send_resolved.get(ctx.receiver, False),
            repeat_interval_ms=ctx.route.options.repeat_interval_ms,
            now_ms=ctx.now_ms,
        )
        if not reason or not (firing_alerts or resolved_alerts):
            return []
        # Alerts told firing that are muted now but still firing stay "told", so that their
        # resolution reaches this receiver later.
        still_firing = {a.fingerprint for a in ctx.group_alerts if a.status == FIRING}
        ctx.log_entry = LogEntry(
            receiver=ctx.receiver,
            group_key=ctx.group_key,
            firing=firing | (told & still_firing),
            resolved=resolved,
            sequence=entry.sequence + 1 if entry else 0,
            sent_ms=ctx.now_ms,
        )
        return firing_alerts + resolved_alerts
