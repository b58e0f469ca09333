"""Alert state into the database after every evaluation, and back out after a restart.

The rule engine (`monitoring.rules`) stays pure: it evaluates and holds alerts in memory. After
each group evaluation the monitor hands the group's alerts to `alerts_persist`, which compares
them with the stored `AlertInstance` rows of that group and, for every state change, updates the
row and appends an `AlertTransition`. Writes are serialised by one lock (and one transaction per
call), so transition ids are committed in increasing order: the notifier reads "id > last seen".

On start the monitor reads `alerts_active()` and gives each rule its pending and firing alerts
back, so `for` keeps counting from the original `active_at` instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from monitoring.monitor.models import AlertInstance, AlertState, AlertTransition

__all__ = [
    "AlertRecord",
    "alert_transitions_after",
    "alerts_active",
    "alerts_persist",
    "alerts_retire",
    "fingerprint_of",
]

_write_lock = threading.Lock()


def fingerprint_of(labels: dict[str, str]) -> str:
    """A stable id for a label set (alertname included), 16 hex digits like Prometheus'."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AlertRecord:
    """One alert as the engine holds it, in the terms the database stores."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # AlertState value
    active_at: datetime | None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    value: float | None = None
    keep_firing_since: datetime | None = None

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.labels)


def _finite(value: float | None) -> float | None:
    # NaN cannot be stored portably (SQLite turns it into NULL); ±Inf is kept.
    return None if value is None or math.isnan(value) else value


def alerts_persist(
    *,
    group: str,
    rule_file: str,
    alerts: Iterable[AlertRecord],
    evaluated_at: datetime,
) -> list[AlertTransition]:
    """Store the group's current alerts; returns the transitions recorded (in id order).

    Alerts of the group stored as pending/firing that are no longer among `alerts` (or are
    there as inactive) become inactive; a firing one gets its `resolved_at`.
    """
    current = {a.fingerprint: a for a in alerts}
    transitions: list[AlertTransition] = []
    live_states = [AlertState.PENDING, AlertState.FIRING]
    if (
        not current
        and not AlertInstance.objects.filter(rule_group=group, state__in=live_states).exists()
    ):
        return transitions  # the quiet, common case: no write (nor SQLite write lock) at all
    with _write_lock, transaction.atomic():
        rows = {
            row.fingerprint: row
            for row in AlertInstance.objects.select_for_update().filter(
                fingerprint__in=list(current)
            )
        }
        live = AlertInstance.objects.select_for_update().filter(
            rule_group=group, state__in=live_states
        )
        for row in live.exclude(fingerprint__in=list(current)):
            rows[row.fingerprint] = row
        for fingerprint, row in rows.items():
            if fingerprint not in current:
                current[fingerprint] = AlertRecord(
                    labels=row.labels,
                    annotations=row.annotations,
                    state=AlertState.INACTIVE,
                    active_at=row.active_at,
                    fired_at=row.fired_at,
                    resolved_at=evaluated_at if row.state == AlertState.FIRING else None,
                    value=row.last_value,
                )
        for fingerprint, alert in current.items():
            row = rows.get(fingerprint)
            previous = row.state if row is not None else AlertState.INACTIVE
            if row is None:
                if alert.state == AlertState.INACTIVE:
                    continue  # a resolved alert we never stored (e.g. pending then gone)
                row = AlertInstance(fingerprint=fingerprint)
            if previous == AlertState.INACTIVE and alert.state != AlertState.INACTIVE:
                row.resolved_at = None  # the alert came back: a new episode on the same row
            row.alertname = alert.alertname
            row.rule_group = group
            row.rule_file = rule_file
            row.labels = alert.labels
            row.annotations = alert.annotations
            row.state = alert.state
            row.active_at = alert.active_at
            row.fired_at = alert.fired_at
            if alert.state == AlertState.INACTIVE and previous == AlertState.FIRING:
                row.resolved_at = alert.resolved_at or evaluated_at
            row.last_value = _finite(alert.value)
            row.last_evaluated_at = evaluated_at
            row.keep_firing_since = alert.keep_firing_since
            row.save()
            if previous != alert.state:
                transitions.append(
                    AlertTransition.objects.create(
                        alert=row,
                        fingerprint=fingerprint,
                        alertname=row.alertname,
                        from_state=previous,
                        to_state=alert.state,
                        labels=row.labels,
                        annotations=row.annotations,
                        value=row.last_value,
                        at=evaluated_at,
                        active_at=row.active_at,
                        fired_at=row.fired_at,
                        resolved_at=row.resolved_at,
                    )
                )
    return transitions


def alerts_active(*, group: str | None = None) -> list[AlertInstance]:
    """Pending and firing alerts as last stored (all groups, or one)."""
    rows = AlertInstance.objects.filter(state__in=[AlertState.PENDING, AlertState.FIRING])
    if group is not None:
        rows = rows.filter(rule_group=group)
    return list(rows.order_by("id"))


def alert_transitions_after(*, after_id: int, limit: int = 500) -> list[AlertTransition]:
    """The transitions recorded after `after_id`, oldest first: what a consumer (the notifier)
    has not handled yet. It stores the last id it handled and asks again from there."""
    return list(
        AlertTransition.objects.filter(id__gt=after_id)
        .select_related("alert")
        .order_by("id")[:limit]
    )


def alerts_retire(*, keep: set[tuple[str, str]], evaluated_at: datetime) -> list[AlertTransition]:
    """Make inactive the stored alerts whose (group, alertname) no longer exists (a rule was
    removed or renamed by a reload), so they do not stay firing forever."""
    orphans: dict[str, list[AlertInstance]] = {}
    for row in alerts_active():
        if (row.rule_group, row.alertname) not in keep:
            orphans.setdefault(row.rule_group, []).append(row)
    transitions: list[AlertTransition] = []
    for group, rows in orphans.items():
        remaining = [
            _record(r) for r in alerts_active(group=group) if (r.rule_group, r.alertname) in keep
        ]
        transitions += alerts_persist(
            group=group, rule_file=rows[0].rule_file, alerts=remaining, evaluated_at=evaluated_at
        )
    return transitions


def _record(row: AlertInstance) -> AlertRecord:
    return AlertRecord(
        labels=row.labels,
        annotations=row.annotations,
        state=row.state,
        active_at=row.active_at,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        value=row.last_value,
        keep_firing_since=row.keep_firing_since,
    )
