"""Acknowledgements, escalation progress and the alert's escalation history, in the monitor's
state file (``StateStore``): the one store both the monitor (embedded mode) and the app
(Alertmanager mode, whose receiver records alerts in the same file) read and write.

Tables, created on first use (``CREATE TABLE IF NOT EXISTS``, as the silences'), keyed by the
alert's fingerprint and its episode (``fired_at_ms``: the start of the firing that is being
escalated), so an acknowledgement or a climb ends with the episode it belongs to:

- ``alert_ack``: who acknowledged which episode, when, and why;
- ``alert_escalation``: the level an episode reached, when, and whether it ended;
- ``alert_event``: an append-only history row per step (level reached, action result,
  acknowledgement, end), read beside ``alert_transition`` by the dashboard (``events``).

Level changes are compare-and-set (``claim_level``): two processes running the engine at once
(several Celery workers in Alertmanager mode) never run a level twice.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from monitoring.monitor.state import StateStore

__all__ = [
    "Ack",
    "Escalation",
    "Event",
    "ack_get",
    "ack_put",
    "acks",
    "claim_level",
    "escalation_end",
    "escalation_get",
    "escalations_open",
    "event_add",
    "events",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_ack (
    fingerprint TEXT NOT NULL,
    episode_ms INTEGER NOT NULL,
    alertname TEXT NOT NULL,
    by TEXT NOT NULL,
    comment TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, episode_ms)
);
CREATE TABLE IF NOT EXISTS alert_escalation (
    fingerprint TEXT NOT NULL,
    episode_ms INTEGER NOT NULL,
    alertname TEXT NOT NULL,
    policy TEXT NOT NULL,
    level INTEGER NOT NULL,
    level_at_ms INTEGER NOT NULL,
    notice TEXT,
    ended_ms INTEGER,
    PRIMARY KEY (fingerprint, episode_ms)
);
CREATE INDEX IF NOT EXISTS alert_escalation_open ON alert_escalation (ended_ms);
CREATE TABLE IF NOT EXISTS alert_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    episode_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    level INTEGER,
    by TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_event_fingerprint ON alert_event (fingerprint);
"""


@dataclass(frozen=True)
class Ack:
    fingerprint: str
    episode_ms: int
    alertname: str
    by: str
    comment: str
    at_ms: int


@dataclass(frozen=True)
class Escalation:
    fingerprint: str
    episode_ms: int
    alertname: str
    policy: str
    level: int  # the highest level reached (0: none yet)
    level_at_ms: int
    notice: dict | None  # the customer notice level 4 put up (None: none)
    ended_ms: int | None


@dataclass(frozen=True)
class Event:
    """One step of an alert's escalation history (kind: level, action, ack, end)."""

    id: int
    fingerprint: str
    episode_ms: int
    kind: str
    level: int | None
    by: str
    detail: dict
    at_ms: int


def _db(store: StateStore) -> None:
    # Once per store object: the tables are created by whichever process opens the file first.
    if getattr(store, "_escalation_ready", False):
        return
    # Statement by statement in a transaction: executescript() would commit a batch in progress.
    with store._transaction() as db:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
    store._escalation_ready = True


def ack_put(store: StateStore, ack: Ack) -> bool:
    """Record the acknowledgement; False when the episode was acknowledged already (the
    first one stands)."""
    _db(store)
    with store._transaction() as db:
        cursor = db.execute(
            "INSERT OR IGNORE INTO alert_ack VALUES (?, ?, ?, ?, ?, ?)",
            (ack.fingerprint, ack.episode_ms, ack.alertname, ack.by, ack.comment, ack.at_ms),
        )
        if cursor.rowcount:
            _event(db, ack.fingerprint, ack.episode_ms, "ack", None, ack.by, ack.at_ms,
                   {"comment": ack.comment})  # fmt: skip
        return bool(cursor.rowcount)


def ack_get(store: StateStore, fingerprint: str, episode_ms: int) -> Ack | None:
    _db(store)
    with store._lock:
        row = store._db.execute(
            "SELECT * FROM alert_ack WHERE fingerprint = ? AND episode_ms = ?",
            (fingerprint, episode_ms),
        ).fetchone()
    return Ack(*row) if row else None


def acks(store: StateStore, *, since_ms: int = 0) -> list[Ack]:
    """Acknowledgements made at or after `since_ms`, newest first."""
    _db(store)
    with store._lock:
        rows = store._db.execute(
            "SELECT * FROM alert_ack WHERE at_ms >= ? ORDER BY at_ms DESC", (since_ms,)
        ).fetchall()
    return [Ack(*row) for row in rows]


def _escalation(row: tuple) -> Escalation:
    notice = json.loads(row[6]) if row[6] else None
    return Escalation(*row[:6], notice, row[7])


def escalation_get(store: StateStore, fingerprint: str, episode_ms: int) -> Escalation | None:
    _db(store)
    with store._lock:
        row = store._db.execute(
            "SELECT * FROM alert_escalation WHERE fingerprint = ? AND episode_ms = ?",
            (fingerprint, episode_ms),
        ).fetchone()
    return _escalation(row) if row else None


def escalations_open(store: StateStore) -> list[Escalation]:
    _db(store)
    with store._lock:
        rows = store._db.execute(
            "SELECT * FROM alert_escalation WHERE ended_ms IS NULL ORDER BY episode_ms"
        ).fetchall()
    return [_escalation(r) for r in rows]


def claim_level(
    store: StateStore,
    *,
    fingerprint: str,
    episode_ms: int,
    alertname: str,
    policy: str,
    level: int,
    at_ms: int,
    notice: dict | None = None,
) -> bool:
    """Move the episode's escalation to `level` if it is below it and open, recording the
    step; False when another process did it first (or the episode ended)."""
    _db(store)
    with store._transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO alert_escalation VALUES (?, ?, ?, ?, 0, ?, NULL, NULL)",
            (fingerprint, episode_ms, alertname, policy, at_ms),
        )
        cursor = db.execute(
            "UPDATE alert_escalation SET level = ?, level_at_ms = ?, policy = ?,"
            " notice = COALESCE(?, notice)"
            " WHERE fingerprint = ? AND episode_ms = ? AND level < ? AND ended_ms IS NULL",
            (level, at_ms, policy, json.dumps(notice) if notice else None, fingerprint,
             episode_ms, level),
        )  # fmt: skip
        if not cursor.rowcount:
            return False
        _event(db, fingerprint, episode_ms, "level", level, "escalation", at_ms,
               {"policy": policy, **({"notice": notice} if notice else {})})  # fmt: skip
        return True


def escalation_end(
    store: StateStore, *, fingerprint: str, episode_ms: int, at_ms: int, reason: str
) -> bool:
    """End the episode's escalation (the alert resolved): its customer notice comes down."""
    _db(store)
    with store._transaction() as db:
        cursor = db.execute(
            "UPDATE alert_escalation SET ended_ms = ? WHERE fingerprint = ? AND episode_ms = ?"
            " AND ended_ms IS NULL",
            (at_ms, fingerprint, episode_ms),
        )
        if cursor.rowcount:
            _event(db, fingerprint, episode_ms, "end", None, "escalation", at_ms,
                   {"reason": reason})  # fmt: skip
        return bool(cursor.rowcount)


def event_add(
    store: StateStore,
    *,
    fingerprint: str,
    episode_ms: int,
    kind: str,
    at_ms: int,
    detail: dict,
    level: int | None = None,
    by: str = "escalation",
) -> None:
    _db(store)
    with store._transaction() as db:
        _event(db, fingerprint, episode_ms, kind, level, by, at_ms, detail)


def _event(
    db: sqlite3.Connection,
    fingerprint: str,
    episode_ms: int,
    kind: str,
    level: int | None,
    by: str,
    at_ms: int,
    detail: dict,
) -> None:
    db.execute(
        "INSERT INTO alert_event (fingerprint, episode_ms, kind, level, by, detail, at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (fingerprint, episode_ms, kind, level, by, json.dumps(detail, sort_keys=True), at_ms),
    )


def events(store: StateStore, fingerprint: str | None = None) -> list[Event]:
    """The escalation history (of one alert, or all), oldest first."""
    _db(store)
    where, params = ("WHERE fingerprint = ?", (fingerprint,)) if fingerprint else ("", ())
    with store._lock:
        rows = store._db.execute(
            f"SELECT id, fingerprint, episode_ms, kind, level, by, detail, at_ms FROM alert_event"
            f" {where} ORDER BY id",
            params,
        ).fetchall()
    return [Event(*r[:6], json.loads(r[6]), r[7]) for r in rows]
