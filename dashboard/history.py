"""An alert's history for the alerts page: its state transitions (pending, firing, resolved),
the notifications sent about it (which receiver, which integration, delivered or not), and its
escalation steps and acknowledgements (monitoring.acknowledge.alert_history), read from the
monitor's state file (monitoring.monitor.state).

Transitions and notifications are read with the file opened read-only (`mode=ro`); the
escalation history goes through monitoring.acknowledge (whose store creates the escalation
tables if no process has yet). A file that does not exist is never created here: the monitor
creates and migrates its own. Alerts real Alertmanager reported are in the same tables
(alerts_received).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitoring.acknowledge import alert_history as escalation_history
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.state import StateStore
from monitoring.rules.alerting import fingerprint

__all__ = ["alert_history", "alert_known", "escalation_events", "existing_store"]

# Enough for an alert's story; older notifications are still in the file.
MAX_EVENTS = 200
# Notifications are matched by the alertname in their JSON first (an index-free scan of the
# newest rows), then by the fingerprint of each alert in them.
SCAN_ROWS = 5000


def _open(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    db.row_factory = sqlite3.Row
    return db


@contextmanager
def existing_store(path: Path | None = None) -> Iterator[StateStore | None]:
    """The monitor's state store (`path`, default MONITOR_STATE_PATH), or None when the
    file does not exist yet."""
    path = path or settings_from_env().state_path
    if not path.exists():
        yield None
        return
    store = StateStore(path)
    try:
        yield store
    finally:
        store.close()


def alert_known(state_path: Path, alert_fingerprint: str) -> bool:
    """Whether the monitor's file has the alert (in any state)."""
    db = _open(state_path)
    if db is None:
        return False
    try:
        sql = "SELECT 1 FROM alert WHERE fingerprint = ?"
        return db.execute(sql, (alert_fingerprint,)).fetchone() is not None
    finally:
        db.close()


def escalation_events(state_path: Path, alert_fingerprint: str) -> list[dict]:
    """The alert's escalation steps and acknowledgements as history events."""
    with existing_store(state_path) as store:
        if store is None:
            return []
        return [
            {"kind": e.kind, "at_ms": e.at_ms, "episode_ms": e.episode_ms, "level": e.level,
             "by": e.by, "detail": e.detail}
            for e in escalation_history(alert_fingerprint, store=store)
        ]  # fmt: skip


def alert_history(state_path: Path, alert_fingerprint: str) -> dict:
    """``{"alert": {...} | None, "events": [...]}``, events oldest first. Each event has
    ``at_ms`` and ``kind``: ``transition`` (``from``, ``to``, ``value``), ``notification``
    (``receiver``, ``integration``, ``channel``, ``status``: pending / delivered / failed,
    ``alert_status``: firing / resolved, ``error``), or an escalation step (``episode_ms``,
    ``level``, ``by``, ``detail``): ``level`` (reached; detail ``policy``), ``action`` (a level
    1 action: ``action``, ``ok``, ``text``), ``notify`` (``receiver``, ``queued``, ``error``),
    ``ack`` (``by`` acknowledged; detail ``comment``), ``end`` (``reason``)."""
    db = _open(state_path)
    if db is None:
        return {"alert": None, "events": []}
    try:
        row = db.execute(
            "SELECT fingerprint, alertname, labels, annotations, state, active_at_ms,"
            " fired_at_ms, resolved_at_ms FROM alert WHERE fingerprint = ?",
            (alert_fingerprint,),
        ).fetchone()
        if row is None:
            return {"alert": None, "events": []}
        alert = {
            "fingerprint": row["fingerprint"],
            "alertname": row["alertname"],
            "labels": json.loads(row["labels"]),
            "annotations": json.loads(row["annotations"]),
            "state": row["state"],
            "active_at_ms": row["active_at_ms"],
            "fired_at_ms": row["fired_at_ms"],
            "resolved_at_ms": row["resolved_at_ms"],
        }
        events = [
            {"kind": "transition", "at_ms": t["at_ms"], "from": t["from_state"],
             "to": t["to_state"], "value": t["value"]}
            for t in db.execute(
                "SELECT at_ms, from_state, to_state, value FROM alert_transition"
                " WHERE fingerprint = ? ORDER BY id DESC LIMIT ?",
                (alert_fingerprint, MAX_EVENTS),
            )
        ]  # fmt: skip
        events += _notifications(db, alert["alertname"], alert_fingerprint)
    except sqlite3.DatabaseError as exc:  # a file the monitor moved aside or is creating
        return {"alert": None, "events": [], "error": str(exc)}
    finally:
        db.close()
    events += escalation_events(state_path, alert_fingerprint)
    # Stable: at the same millisecond the transition stays before what it caused.
    events.sort(key=lambda e: e["at_ms"])
    return {"alert": alert, "events": events[-MAX_EVENTS:]}


def _notifications(db: sqlite3.Connection, alertname: str, wanted: str) -> list[dict]:
    try:
        rows = db.execute(
            "SELECT receiver, integration, kind, payload, status, last_error, created_ms,"
            " delivered_ms FROM notification_outbox WHERE payload LIKE ?"
            " ORDER BY id DESC LIMIT ?",
            (f"%{alertname}%", SCAN_ROWS),
        ).fetchall()
    except sqlite3.OperationalError:  # a state file from before the outbox (schema < 3)
        return []
    events = []
    for row in rows:
        payload = json.loads(row["payload"])
        for a in payload.get("alerts", []):
            if fingerprint(a["labels"]) == wanted:
                events.append(
                    {
                        "kind": "notification",
                        "at_ms": row["delivered_ms"] or row["created_ms"],
                        "receiver": row["receiver"],
                        "integration": row["integration"],
                        "channel": row["kind"],
                        "status": row["status"],
                        "alert_status": a.get("status", ""),
                        "error": row["last_error"],
                    }
                )
                break
    return events
