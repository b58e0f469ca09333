"""An alert's history for the alerts page: its state transitions (pending, firing, resolved)
and the notifications sent about it (which receiver, which integration, delivered or not),
read from the monitor's state file (monitoring.monitor.state).

The file is opened read-only (`mode=ro`): the web process never migrates or writes the
monitor's state. Alerts real Alertmanager reported are in the same tables (alerts_received).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from monitoring.rules.alerting import fingerprint

__all__ = ["alert_history"]

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


def alert_history(state_path: Path, alert_fingerprint: str) -> dict:
    """``{"alert": {...} | None, "events": [...]}``, events oldest first. Each event has
    ``at_ms`` and ``kind``: ``transition`` (``from``, ``to``, ``value``) or ``notification``
    (``receiver``, ``integration``, ``channel``, ``status``: pending / delivered / failed,
    ``alert_status``: firing / resolved, ``error``)."""
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
