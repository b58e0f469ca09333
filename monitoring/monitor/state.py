"""The monitor's own state store: one SQLite file under VAR_DIR, never the database it watches.

Alert state lives here so that the monitor keeps recording it while the shop's PostgreSQL is
down (watching that outage is its job). The file holds:

- ``alert``: one row per alert (rule + label set, keyed by the rules layer's ``fingerprint``)
  with its current state, kept after resolution so the row is reused when the alert comes back;
  alerts real Alertmanager posts to the app's receiver are recorded here too
  (``alerts_received``), under a rule group of their own (``RECEIVED_GROUP``);
- ``alert_transition``: an append-only row per state change. Ids come from one writer (a lock
  serialises every write of the process) and AUTOINCREMENT never reuses one, so they increase
  in commit order: a consumer (the notifier) remembers the last id it handled and asks for
  ``alert_transitions_after(after_id=…)``. ``alert_transitions_prune(before_ms=…)`` drops
  the old ones (the monitor's gc, past ``MONITOR_STATE_RETENTION``), keeping the last
  transition of every alert still pending or firing; AUTOINCREMENT never hands a pruned id
  out again, so the order holds;
- ``dashboard_notification``: what the notifier's dashboard channel delivered (one row per
  idempotency key), for the web dashboard to read;
- ``notification_outbox``: every notification, one row per receiver integration, written before
  any delivery is tried (pending → delivered | failed), and ``notification_log``: what each
  receiver was last told for each group (the dedup stage's memory).
- ``silence``: the notifier's silences (``monitoring.notify.silences``).

Only legal transitions are recorded (``LEGAL_TRANSITIONS``, also a CHECK in the schema). When
the engine's view and the stored one belong to different episodes of an alert (state older
than the outage tolerance was not restored, so the alert started over), the stored episode is
first ended (``firing → inactive`` is a resolution), then the new one recorded, rather than
writing ``firing → pending``.

The schema is versioned with ``PRAGMA user_version`` and upgraded by ``MIGRATIONS``, run in
order at open (step 3: the notifier's ``notification_outbox`` and ``notification_log``). A file
that is not a readable SQLite database, or fails ``quick_check``, is moved aside (logged) and a
fresh one is started: a damaged state file costs the restored state, never a crash loop.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from monitoring.rules.alerting import FIRING, INACTIVE, PENDING, Alert

if TYPE_CHECKING:
    from monitoring.notify.notification import Notification, NotifiedAlert
    from monitoring.notify.silences import Silence, SilenceEvent

__all__ = [
    "LEGAL_TRANSITIONS",
    "RECEIVED_FILE",
    "RECEIVED_GROUP",
    "DashboardNotification",
    "LogEntry",
    "OutboxRow",
    "IllegalTransition",
    "MIGRATIONS",
    "StateStore",
    "StoredAlert",
    "Transition",
]

logger = logging.getLogger(__name__)

LEGAL_TRANSITIONS = frozenset(
    {
        (INACTIVE, PENDING),
        (PENDING, FIRING),
        (PENDING, INACTIVE),
        (FIRING, INACTIVE),
        (INACTIVE, FIRING),  # a rule with `for: 0` fires at its first evaluation
    }
)
_LIVE = (PENDING, FIRING)

# The rule group and file of alerts received from real Alertmanager (`alerts_received`): no
# loaded rule group has an empty name (the loader refuses one), so the monitor's evaluation,
# restore and retirement never take these alerts for its own rules'.
RECEIVED_GROUP = ""
RECEIVED_FILE = "alertmanager"

# Each step takes the file from version i to i + 1 (`PRAGMA user_version`), in one transaction.
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE alert (
        fingerprint TEXT PRIMARY KEY,
        alertname TEXT NOT NULL,
        rule_group TEXT NOT NULL,
        rule_file TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('inactive', 'pending', 'firing')),
        active_at_ms INTEGER,
        fired_at_ms INTEGER,
        resolved_at_ms INTEGER,
        keep_firing_since_ms INTEGER,
        last_value REAL,
        last_evaluated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX alert_live ON alert (state, rule_group);
    CREATE TABLE alert_transition (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        fingerprint TEXT NOT NULL REFERENCES alert (fingerprint),
        alertname TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        value REAL,
        at_ms INTEGER NOT NULL,
        active_at_ms INTEGER,
        fired_at_ms INTEGER,
        resolved_at_ms INTEGER,
        recorded_at_ms INTEGER NOT NULL,
        CHECK (from_state || '>' || to_state IN (
            {", ".join(f"'{a}>{b}'" for a, b in sorted(LEGAL_TRANSITIONS))}
        ))
    );
    CREATE INDEX alert_transition_fingerprint ON alert_transition (fingerprint);
    """,
    # The dashboard channel's records: one row per notification, the webhook v4 document as
    # the body; the idempotency key is unique, so a repeated delivery is one row.
    """
    CREATE TABLE dashboard_notification (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        receiver TEXT NOT NULL,
        group_key TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX dashboard_notification_created ON dashboard_notification (created_at_ms);
    """,
    # The notifier's outbox (one row per notification and integration, written before any
    # delivery is tried) and its notification log (what each receiver was last sent for each
    # group: Alertmanager's nflog, the dedup stage's memory).
    """
    CREATE TABLE notification_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL,
        receiver TEXT NOT NULL,
        integration TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        deadline_ms INTEGER NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL,
        delivered_ms INTEGER,
        UNIQUE (idempotency_key, integration)
    );
    CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt_ms);
    CREATE TABLE notification_log (
        receiver TEXT NOT NULL,
        group_key TEXT NOT NULL,
        firing TEXT NOT NULL,
        resolved TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        sent_ms INTEGER NOT NULL,
        PRIMARY KEY (receiver, group_key)
    );
    """,
    # The notifier's silences (monitoring.notify.silences): matchers as JSON [[name, op, value]].
    """
    CREATE TABLE IF NOT EXISTS silence (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts_at_ms INTEGER NOT NULL,
        ends_at_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    """,
    # Who created, changed or expired which silence, and when (the maintenance windows' audit
    # trail; monitoring.notify.silences). Pruned with the silence.
    """
    CREATE TABLE IF NOT EXISTS silence_event (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        silence_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS silence_event_by_silence ON silence_event (silence_id, seq);
    """,
)


@dataclass(frozen=True)
class StoredAlert:
    """An alert as last recorded (times in Unix milliseconds, as the engine's)."""

    fingerprint: str
    alertname: str
    rule_group: str
    rule_file: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    active_at_ms: int | None
    fired_at_ms: int | None
    resolved_at_ms: int | None
    keep_firing_since_ms: int | None
    last_value: float | None
    last_evaluated_at_ms: int


@dataclass(frozen=True)
class Transition:
    id: int
    fingerprint: str
    alertname: str
    from_state: str
    to_state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    at_ms: int  # the evaluation at which the state changed
    active_at_ms: int | None
    fired_at_ms: int | None
    resolved_at_ms: int | None

    @property
    def is_resolution(self) -> bool:
        """A firing alert stopped firing: the notifier sends the 'resolved' message."""
        return self.from_state == FIRING and self.to_state == INACTIVE


@dataclass(frozen=True)
class DashboardNotification:
    """A notification as the dashboard channel recorded it (``body``: webhook v4 JSON)."""

    id: int
    idempotency_key: str
    receiver: str
    group_key: str
    status: str
    severity: str
    title: str
    body: dict
    created_at_ms: int


@dataclass(frozen=True)
class LogEntry:
    """What a receiver was last sent for a group (fingerprints), and when."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    resolved: frozenset[str]
    sequence: int
    sent_ms: int


@dataclass(frozen=True)
class OutboxWrite:
    """One notification's outbox rows (dicts of the columns, one per integration) and the
    receiver's log entry that goes with them: written together or not at all."""

    rows: list[dict]
    log: LogEntry


@dataclass(frozen=True)
class OutboxRow:
    """One notification for one integration of a receiver (``payload``: the notification)."""

    id: int
    idempotency_key: str
    receiver: str
    integration: str  # e.g. "email/0": the receiver's first email_config
    kind: str  # the channel: email, slack, sms, webhook, dashboard
    payload: dict
    status: str
    attempts: int
    next_attempt_ms: int
    deadline_ms: int
    last_error: str
    created_ms: int
    delivered_ms: int | None
    # The notification itself, on a row handed over by the flush that wrote it: the sender
    # uses it as it is rather than decoding `payload` and hashing its alerts again. Never
    # stored; a row read from the table has none.
    notification: Notification | None = field(default=None, compare=False, repr=False)


# Outbox rows an INSERT writes at most: 8 variables a row, under SQLite's 32,766 a statement.
_ROWS_A_STATEMENT = 500


class _Unusable(sqlite3.DatabaseError):
    """The file opened but cannot be used as this monitor's state (damaged, or too new)."""


# What a damaged file raises. Others (locked by another process, unwritable) are not damage:
# moving the file aside for them would throw good state away.
_DAMAGE = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}


class IllegalTransition(AssertionError):
    """A bug: the store was asked to record a change the alert lifecycle does not have."""


def _finite(value: float | None) -> float | None:
    # NaN cannot be stored (SQLite turns it into NULL anyway); ±Inf is kept.
    return None if value is None or math.isnan(value) else value


def _json(data: dict[str, str]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class StateStore:
    """The state file, opened (and migrated) once per process; every method is thread-safe.

    One connection shared under a lock: SQLite allows one writer at a time anyway, and the
    lock is what makes transition ids increase in commit order."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s  # how long to wait for another writer's lock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # re-entered by the writes of a `batch`
        self._batching = False
        self._synchronous = "FULL"  # the connection's mode (set at connect)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            damaged = getattr(exc, "sqlite_errorname", "") in _DAMAGE
            if not (damaged or isinstance(exc, _Unusable)):
                raise
            self._move_aside(str(exc))
            self._db = self._connect()

    # -- opening ------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_s
        )
        try:
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise _Unusable(f"quick_check: {problem}")
            self._wal(db)
            # FULL: a committed transition survives a power loss too, not only a process kill;
            # the monitor writes a few rows per evaluation, so the extra fsync costs nothing.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _wal(self, db: sqlite3.Connection) -> None:
        """WAL mode; the switch of a new file can answer "locked" at once, without waiting on
        the busy timeout, while another opener switches it: try again until that timeout."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, db: sqlite3.Connection) -> None:
        while True:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise _Unusable(
                    f"schema version {version} is newer than this monitor's {len(MIGRATIONS)}"
                )
            if version == len(MIGRATIONS):
                return
            number = version + 1
            # executescript() commits first and runs outside a transaction: wrap it in one,
            # so a kill mid-step leaves the previous version, not half of this one.
            try:
                db.executescript(
                    f"BEGIN IMMEDIATE; {MIGRATIONS[version]}; PRAGMA user_version = {number};"
                    " COMMIT;"
                )
            except sqlite3.OperationalError:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                # Another process opening a new file at the same moment (the monitor, the
                # app's gunicorn workers receiving Alertmanager's webhooks) made this step
                # between our reading the version and taking the lock: go on from its version.
                if db.execute("PRAGMA user_version").fetchone()[0] >= number:
                    continue
                raise
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            logger.info("monitor state %s: schema version %d", self.path, number)

    def _move_aside(self, problem: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(f"{aside}{suffix}")
        logger.error(
            "monitor state file %s is unreadable (%s): moved to %s, starting with a fresh one "
            "(pending and firing alerts start over)",
            self.path,
            problem,
            aside,
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(
        self, *, durable: bool = True, single: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction. `durable=False` (the notifier's outbox, its log and the
        dashboard records) commits without an fsync (synchronous=NORMAL in WAL mode): it
        survives a process kill, and a power loss can only roll back whole transactions, the
        outbox row together with its log entry, so the notification is made again from the
        restored alert state, or sent once more under the same idempotency key. An fsync costs
        about 5 ms here, twice per notification: more than everything else on its way.
        Inside a `batch` it is a savepoint of the batch's transaction. `single`: the caller
        runs one statement, atomic on its own (autocommit), so no BEGIN/COMMIT is needed."""
        with self._lock:
            if self._batching:
                self._db.execute("SAVEPOINT write")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK TO write")
                    self._db.execute("RELEASE write")
                    raise
                self._db.execute("RELEASE write")
                return
            # The mode is switched only when it changes (two statements saved on every
            # outbox write; reads do not care).
            mode = "FULL" if durable else "NORMAL"
            if self._synchronous != mode:
                self._db.execute(f"PRAGMA synchronous={mode}")
                self._synchronous = mode
            if single:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The notifier's writes of one dispatch as one transaction without an fsync (see
        `_transaction`): one commit for a hundred groups instead of a hundred. A write that
        fails inside rolls back alone (a savepoint); other threads wait for the commit, so
        nothing is sent before its row is there."""
        with self._transaction(durable=False):
            self._batching = True
            try:
                yield
            finally:
                self._batching = False

    # -- alert state --------------------------------------------------------------------------
    def alerts_persist(
        self, *, group: str, rule_file: str, alerts: Iterable[Alert], evaluated_at_ms: int
    ) -> list[Transition]:
        """Store the group's current alerts; returns the transitions recorded (in id order).

        Alerts of the group stored as pending/firing that are no longer among `alerts` (or are
        there as inactive) become inactive; a firing one gets its `resolved_at_ms`."""
        current = {a.fingerprint: a for a in alerts}
        transitions: list[Transition] = []
        with self._transaction() as db:
            marks = ",".join("?" * len(current))
            rows = {
                row.fingerprint: row
                for row in self._select(
                    db,
                    f"fingerprint IN ({marks}) OR (rule_group = ? AND state IN (?, ?))",
                    [*current, group, *_LIVE],
                )
            }
            for fingerprint, row in list(rows.items()):
                alert = current.get(fingerprint)
                if row.state in _LIVE and (alert is None or _new_episode(row, alert)):
                    # Gone from the result: the monitor resolves it. Or a new episode (the
                    # stored one was older than the outage tolerance and not restored, so the
                    # engine started over): end the stored one first, so that neither
                    # firing -> pending nor a silently restarted firing alert is recorded.
                    transitions.append(self._end(db, row, evaluated_at_ms))
                    rows[fingerprint] = replace(row, state=INACTIVE)
            for fingerprint, alert in current.items():
                row = rows.get(fingerprint)
                previous = INACTIVE if row is None else row.state
                if row is None and alert.state == INACTIVE:
                    continue  # a resolved alert we never stored (e.g. pending, then gone)
                self._upsert(db, alert, group, rule_file, evaluated_at_ms, previous, row)
                if previous != alert.state:
                    transitions.append(
                        self._record(
                            db,
                            fingerprint=fingerprint,
                            labels=dict(alert.labels),
                            annotations=alert.annotations,
                            from_state=previous,
                            to_state=alert.state,
                            value=_finite(alert.value),
                            at_ms=evaluated_at_ms,
                            active_at_ms=alert.active_at_ms,
                            fired_at_ms=alert.fired_at_ms,
                            resolved_at_ms=self._resolved_at(alert, previous, evaluated_at_ms),
                        )
                    )
        return transitions

    @staticmethod
    def _resolved_at(alert: Alert, previous: str, evaluated_at_ms: int) -> int | None:
        if alert.state == INACTIVE and previous == FIRING:
            return alert.resolved_at_ms or evaluated_at_ms
        return None

    def _upsert(
        self,
        db: sqlite3.Connection,
        alert: Alert,
        group: str,
        rule_file: str,
        evaluated_at_ms: int,
        previous: str,
        row: StoredAlert | None,
    ) -> None:
        if alert.state == INACTIVE:
            # Keep the resolution of the episode that ended (or the one already stored).
            resolved_at = self._resolved_at(alert, previous, evaluated_at_ms)
            if resolved_at is None and row is not None:
                resolved_at = row.resolved_at_ms
        else:
            resolved_at = None  # live: a new episode on the same row has no resolution
        db.execute(
            "INSERT INTO alert (fingerprint, alertname, rule_group, rule_file, labels,"
            " annotations, state, active_at_ms, fired_at_ms, resolved_at_ms,"
            " keep_firing_since_ms, last_value, last_evaluated_at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET alertname = excluded.alertname,"
            " rule_group = excluded.rule_group, rule_file = excluded.rule_file,"
            " labels = excluded.labels, annotations = excluded.annotations,"
            " state = excluded.state, active_at_ms = excluded.active_at_ms,"
            " fired_at_ms = excluded.fired_at_ms, resolved_at_ms = excluded.resolved_at_ms,"
            " keep_firing_since_ms = excluded.keep_firing_since_ms,"
            " last_value = excluded.last_value,"
            " last_evaluated_at_ms = excluded.last_evaluated_at_ms",
            (
                alert.fingerprint,
                dict(alert.labels).get("alertname", ""),
                group,
                rule_file,
                _json(dict(alert.labels)),
                _json(alert.annotations),
                alert.state,
                alert.active_at_ms,
                alert.fired_at_ms,
                resolved_at,
                alert.keep_firing_since_ms,
                _finite(alert.value),
                evaluated_at_ms,
            ),
        )

    def _end(self, db: sqlite3.Connection, row: StoredAlert, at_ms: int) -> Transition:
        """The stored live episode of `row` ends at `at_ms` (a firing one is resolved)."""
        resolved_at = at_ms if row.state == FIRING else None
        db.execute(
            "UPDATE alert SET state = ?, resolved_at_ms = ?, last_evaluated_at_ms = ?"
            " WHERE fingerprint = ?",
            (INACTIVE, resolved_at, at_ms, row.fingerprint),
        )
        return self._record(
            db,
            fingerprint=row.fingerprint,
            labels=row.labels,
            annotations=row.annotations,
            from_state=row.state,
            to_state=INACTIVE,
            value=row.last_value,
            at_ms=at_ms,
            active_at_ms=row.active_at_ms,
            fired_at_ms=row.fired_at_ms,
            resolved_at_ms=resolved_at,
        )

    def _record(self, db: sqlite3.Connection, **fields) -> Transition:
        if (fields["from_state"], fields["to_state"]) not in LEGAL_TRANSITIONS:
            raise IllegalTransition(f"{fields['from_state']} -> {fields['to_state']}")
        labels, annotations = fields["labels"], fields["annotations"]
        cursor = db.execute(
            "INSERT INTO alert_transition (fingerprint, alertname, from_state, to_state,"
            " labels, annotations, value, at_ms, active_at_ms, fired_at_ms, resolved_at_ms,"
            " recorded_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fields["fingerprint"],
                labels.get("alertname", ""),
                fields["from_state"],
                fields["to_state"],
                _json(labels),
                _json(annotations),
                fields["value"],
                fields["at_ms"],
                fields["active_at_ms"],
                fields["fired_at_ms"],
                fields["resolved_at_ms"],
                round(time.time() * 1000),
            ),
        )
        return Transition(id=cursor.lastrowid, alertname=labels.get("alertname", ""), **fields)

    @staticmethod
    def _select(db: sqlite3.Connection, where: str, params: list) -> list[StoredAlert]:
        cursor = db.execute(
            "SELECT fingerprint, alertname, rule_group, rule_file, labels, annotations, state,"
            " active_at_ms, fired_at_ms, resolved_at_ms, keep_firing_since_ms, last_value,"
            f" last_evaluated_at_ms FROM alert WHERE {where} ORDER BY rowid",
            params,
        )
        return [
            StoredAlert(*row[:4], json.loads(row[4]), json.loads(row[5]), *row[6:])  # fmt: skip
            for row in cursor
        ]

    def alerts_active(self, *, group: str | None = None) -> list[StoredAlert]:
        """Pending and firing alerts as last stored (all groups, or one)."""
        where, params = "state IN (?, ?)", list(_LIVE)
        if group is not None:
            where, params = where + " AND rule_group = ?", [*params, group]
        with self._lock:
            return self._select(self._db, where, params)

    def alerts_resolved_since(self, *, since_ms: int) -> list[StoredAlert]:
        """Alerts that fired and resolved at or after `since_ms` (the rule engine keeps such
        an alert 15 minutes to send its resolution; after a restart only this file has it)."""
        with self._lock:
            return self._select(
                self._db,
                "state = 'inactive' AND fired_at_ms IS NOT NULL AND resolved_at_ms >= ?",
                [since_ms],
            )

    def alert_transitions_after(self, *, after_id: int, limit: int = 500) -> list[Transition]:
        """The transitions recorded after `after_id`, oldest first: what a consumer (the
        notifier) has not handled yet. It stores the last id it handled and asks from there."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, fingerprint, alertname, from_state, to_state, labels, annotations,"
                " value, at_ms, active_at_ms, fired_at_ms, resolved_at_ms FROM alert_transition"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            )
            return [
                Transition(*row[:5], json.loads(row[5]), json.loads(row[6]), *row[7:])
                for row in cursor
            ]

    def alert_transitions_prune(self, *, before_ms: int) -> int:
        """Delete the transitions that happened (``at_ms``) before `before_ms`, except the last
        one of each alert still pending or firing: what started the episode in progress stays
        readable. Returns how many were deleted."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM alert_transition WHERE at_ms < ? AND id NOT IN ("
                " SELECT MAX(t.id) FROM alert_transition t JOIN alert a USING (fingerprint)"
                " WHERE a.state IN (?, ?) GROUP BY t.fingerprint)",
                (before_ms, *_LIVE),
            )
            return cursor.rowcount

    def alerts_retire(
        self, *, keep: set[tuple[str, str]], evaluated_at_ms: int
    ) -> list[Transition]:
        """Make inactive the stored alerts whose (group, alertname) no longer exists (a rule was
        removed or renamed by a reload), so they do not stay firing forever."""
        with self._transaction() as db:
            orphans = [
                row
                for row in self._select(db, "state IN (?, ?)", list(_LIVE))
                if (row.rule_group, row.alertname) not in keep and row.rule_group != RECEIVED_GROUP
            ]
            return [self._end(db, row, evaluated_at_ms) for row in orphans]

    def alerts_received(self, alerts: Iterable[NotifiedAlert], *, at_ms: int) -> list[Transition]:
        """Record alerts real Alertmanager sent (a webhook's) in the alert history, under
        ``RECEIVED_GROUP``; returns the transitions recorded. `at_ms` (when the webhook came)
        is stored as the alert's ``last_evaluated_at_ms``.

        An episode is the fingerprint and ``startsAt`` (Alertmanager keeps an alert's start
        while it fires): its first firing is ``inactive → firing`` at ``startsAt``, its
        resolution ``firing → inactive`` at ``endsAt``; a repeat of either (repeat_interval,
        several receivers, a retry) records nothing. A firing alert with a later start ends
        the stored episode first, at that start (its resolution was never received); an alert
        of an episode older than the stored one is ignored, and so is one the monitor's own
        rules are recording live (the same label set evaluated by both)."""
        transitions: list[Transition] = []
        with self._transaction() as db:
            for received in alerts:
                self._receive(db, received, at_ms, transitions)
        return transitions

    def _receive(
        self, db: sqlite3.Connection, received: NotifiedAlert, at_ms: int, out: list[Transition]
    ) -> None:
        fingerprint, start = received.fingerprint, received.starts_at_ms
        [row] = self._select(db, "fingerprint = ?", [fingerprint]) or [None]
        if row is not None and row.state in _LIVE and row.rule_group != RECEIVED_GROUP:
            return  # the monitor's own rule is recording this episode
        if row is not None and row.active_at_ms is not None:
            if start < row.active_at_ms:
                return  # a late message about an episode before the stored one
            if start > row.active_at_ms and row.state in _LIVE:
                out.append(self._end(db, row, start))  # its resolution was never received
                row = replace(row, state=INACTIVE)
        alert = Alert(
            labels=tuple(sorted(received.labels.items())),
            annotations=dict(received.annotations),
            state=FIRING,
            value=math.nan,  # the webhook carries no value
            active_at_ms=start,
            fired_at_ms=start,
        )
        if row is None or row.active_at_ms != start:  # the episode's first message
            out.append(self._received(db, alert, INACTIVE, row, at_ms=start))
            [row] = self._select(db, "fingerprint = ?", [fingerprint])
        if received.ends_at_ms is not None and row.state == FIRING:
            resolved = replace(alert, state=INACTIVE, resolved_at_ms=received.ends_at_ms)
            out.append(self._received(db, resolved, FIRING, row, at_ms=received.ends_at_ms))
        # When Alertmanager last spoke of it (its repeats keep a firing alert fresh).
        db.execute(
            "UPDATE alert SET last_evaluated_at_ms = ? WHERE fingerprint = ?", (at_ms, fingerprint)
        )

    def _received(
        self,
        db: sqlite3.Connection,
        alert: Alert,
        previous: str,
        row: StoredAlert | None,
        *,
        at_ms: int,
    ) -> Transition:
        self._upsert(db, alert, RECEIVED_GROUP, RECEIVED_FILE, at_ms, previous, row)
        return self._record(
            db,
            fingerprint=alert.fingerprint,
            labels=dict(alert.labels),
            annotations=alert.annotations,
            from_state=previous,
            to_state=alert.state,
            value=None,
            at_ms=at_ms,
            active_at_ms=alert.active_at_ms,
            fired_at_ms=alert.fired_at_ms,
            resolved_at_ms=alert.resolved_at_ms,
        )

    # -- dashboard notifications --------------------------------------------------------------
    def dashboard_notification_add(
        self,
        *,
        idempotency_key: str,
        receiver: str,
        group_key: str,
        status: str,
        severity: str,
        title: str,
        body: dict,
        created_at_ms: int,
    ) -> bool:
        """Record a notification for the dashboard; False when its key is already recorded
        (a repeated delivery stays one row)."""
        with self._transaction(durable=False) as db:
            cursor = db.execute(
                "INSERT INTO dashboard_notification (idempotency_key, receiver, group_key,"
                " status, severity, title, body, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    idempotency_key,
                    receiver,
                    group_key,
                    status,
                    severity,
                    title,
                    json.dumps(body, separators=(",", ":")),
                    created_at_ms,
                ),
            )
            return cursor.rowcount == 1

    def dashboard_notifications(
        self, *, after_id: int = 0, limit: int = 100
    ) -> list[DashboardNotification]:
        """The newest `limit` recorded notifications with an id above `after_id`, newest first."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, idempotency_key, receiver, group_key, status, severity, title, body,"
                " created_at_ms FROM dashboard_notification WHERE id > ?"
                " ORDER BY id DESC LIMIT ?",
                (after_id, limit),
            )
            return [DashboardNotification(*row[:7], json.loads(row[7]), row[8]) for row in cursor]

    # -- silences ------------------------------------------------------------------------------
    def silence_put(self, silence: Silence) -> None:
        """Insert or replace a silence (monitoring.notify.silences keeps the rules)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO silence (id, matchers, starts_at_ms, ends_at_ms,"
                " created_by, comment, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.id,
                    json.dumps([[m.name, m.op, m.value] for m in silence.matchers]),
                    silence.starts_at_ms,
                    silence.ends_at_ms,
                    silence.created_by,
                    silence.comment,
                    silence.updated_at_ms,
                ),
            )

    def silences_load(self) -> list[Silence]:
        """Every stored silence. A row whose matchers no longer compile is skipped (logged)."""
        from monitoring.notify.silences import Silence, SilenceError, matcher_new

        with self._lock:
            rows = self._db.execute(
                "SELECT id, matchers, starts_at_ms, ends_at_ms, created_by, comment,"
                " updated_at_ms FROM silence ORDER BY id"
            ).fetchall()
        out = []
        for row in rows:
            try:
                matchers = tuple(matcher_new(*m) for m in json.loads(row[1]))
            except (SilenceError, ValueError, TypeError):
                logger.error(
                    "monitor state %s: silence %s is unreadable, skipped", self.path, row[0]
                )
                continue
            out.append(Silence(row[0], matchers, *row[2:]))
        return out

    def silences_delete(self, ids: Iterable[str]) -> None:
        ids = [(i,) for i in ids]
        with self._transaction() as db:
            db.executemany("DELETE FROM silence WHERE id = ?", ids)
            db.executemany("DELETE FROM silence_event WHERE silence_id = ?", ids)

    def silence_event_add(self, event: SilenceEvent) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO silence_event (silence_id, at_ms, action, actor, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (event.silence_id, event.at_ms, event.action, event.actor, event.detail),
            )

    def silence_events(self) -> list[SilenceEvent]:
        """Every recorded silence event, oldest first."""
        from monitoring.notify.silences import SilenceEvent

        with self._lock:
            rows = self._db.execute(
                "SELECT silence_id, at_ms, action, actor, detail FROM silence_event ORDER BY seq"
            ).fetchall()
        return [SilenceEvent(*row) for row in rows]

    # -- the notifier's outbox and notification log ------------------------------------------
    def outbox_enqueue(
        self, *, rows: Iterable[dict], log: LogEntry, written: list[OutboxRow] | None = None
    ) -> int:
        """Write a notification's rows (one per integration) and the receiver's log entry in
        one transaction: either the notification is due for delivery and recorded as sent, or
        neither. Rows whose (key, integration) exists already are kept as they are. Returns
        the number of rows added; `written` gets them as read back, once they are written
        (the deliverer takes them from there without reading them again)."""
        new = self.outbox_enqueue_many([OutboxWrite(list(rows), log)])
        if written is not None:
            written.extend(new)
        return len(new)

    def outbox_enqueue_many(self, writes: list[OutboxWrite]) -> list[OutboxRow]:
        """`outbox_enqueue` for several notifications in one transaction (a savepoint inside a
        `batch`), with one INSERT for all their rows and one statement for all their log
        entries: a flush chunk's groups cost two statements instead of a savepoint and two
        statements each. All or none are written; the flush falls back to one notification
        at a time when this fails, so one bad group does not hold the others back. Returns
        the rows added, in the order given."""
        rows = [row for write in writes for row in write.rows]
        added: dict[tuple[str, str], int] = {}
        with self._transaction(durable=False) as db:
            for start in range(0, len(rows), _ROWS_A_STATEMENT):
                part = rows[start : start + _ROWS_A_STATEMENT]
                values = []
                for row in part:
                    values += (
                        row["idempotency_key"],
                        row["receiver"],
                        row["integration"],
                        row["kind"],
                        orjson.dumps(row["payload"]).decode(),
                        row["created_ms"],
                        row["deadline_ms"],
                        row["created_ms"],
                    )
                # RETURNING names only the rows inserted (not those ON CONFLICT kept), in no
                # set order: matched back by (key, integration), the table's unique key.
                returned = db.execute(
                    "INSERT INTO notification_outbox (idempotency_key, receiver, integration,"
                    " kind, payload, status, next_attempt_ms, deadline_ms, created_ms) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, 'pending', ?, ?, ?)"] * len(part))
                    + " ON CONFLICT (idempotency_key, integration) DO NOTHING"
                    " RETURNING id, idempotency_key, integration",
                    values,
                ).fetchall()
                added.update(((key, integration), row_id) for row_id, key, integration in returned)
            db.executemany(
                "INSERT INTO notification_log (receiver, group_key, firing, resolved, sequence,"
                " sent_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (receiver, group_key)"
                " DO UPDATE SET firing = excluded.firing, resolved = excluded.resolved,"
                " sequence = excluded.sequence, sent_ms = excluded.sent_ms",
                [
                    (
                        log.receiver,
                        log.group_key,
                        orjson.dumps(sorted(log.firing)).decode(),
                        orjson.dumps(sorted(log.resolved)).decode(),
                        log.sequence,
                        log.sent_ms,
                    )
                    for log in (write.log for write in writes)
                ],
            )
        new = []
        for row in rows:
            row_id = added.pop((row["idempotency_key"], row["integration"]), None)
            if row_id is not None:  # a repeat of a (key, integration) in `rows` is added once
                new.append(_pending_row(row_id, row))
        return new

    def notification_log_get(self, *, receiver: str, group_key: str) -> LogEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT firing, resolved, sequence, sent_ms FROM notification_log"
                " WHERE receiver = ? AND group_key = ?",
                (receiver, group_key),
            ).fetchone()
        if row is None:
            return None
        firing, resolved = frozenset(orjson.loads(row[0])), frozenset(orjson.loads(row[1]))
        return LogEntry(receiver, group_key, firing, resolved, row[2], row[3])

    def notification_log_delete(self, *, receiver: str, group_key: str) -> None:
        """Forget a group whose alerts all resolved and were told (Alertmanager's nflog
        entries expire the same way): its next episode starts at sequence 0 again."""
        with self._transaction(durable=False) as db:
            db.execute(
                "DELETE FROM notification_log WHERE receiver = ? AND group_key = ?",
                (receiver, group_key),
            )

    def notification_log_untell(
        self, *, receiver: str, group_key: str, sequence: int, fingerprints: Iterable[str]
    ) -> bool:
        """A notification failed for good: its firing alerts were not told after all, unless
        a later notification of the group was made meanwhile (the entry's sequence moved on).
        Then the next flush sends them again, as Alertmanager retries at the next
        group_interval (its log records only what was delivered). Returns whether it changed."""
        with self._transaction(durable=False) as db:
            row = db.execute(
                "SELECT firing, sequence FROM notification_log WHERE receiver = ? AND group_key = ?",
                (receiver, group_key),
            ).fetchone()
            if row is None or row[1] != sequence:
                return False
            firing = set(json.loads(row[0])) - set(fingerprints)
            db.execute(
                "UPDATE notification_log SET firing = ? WHERE receiver = ? AND group_key = ?",
                (orjson.dumps(sorted(firing)).decode(), receiver, group_key),
            )
            return True

    _OUTBOX_COLUMNS = (
        "id, idempotency_key, receiver, integration, kind, payload, status, attempts,"
        " next_attempt_ms, deadline_ms, last_error, created_ms, delivered_ms"
    )

    def _outbox_rows(self, where: str, params: list, limit: int = -1) -> list[OutboxRow]:
        with self._lock:
            cursor = self._db.execute(
                f"SELECT {self._OUTBOX_COLUMNS} FROM notification_outbox WHERE {where}"
                " ORDER BY id LIMIT ?",
                [*params, limit],
            )
            return [OutboxRow(*row[:5], orjson.loads(row[5]), *row[6:]) for row in cursor]

    def outbox_due(self, *, now_ms: int, limit: int = 100) -> list[OutboxRow]:
        """Pending rows whose next attempt is due, oldest first."""
        return self._outbox_rows("status = 'pending' AND next_attempt_ms <= ?", [now_ms], limit)

    def outbox_rows(self, *, status: str | None = None) -> list[OutboxRow]:
        if status is None:
            return self._outbox_rows("1", [])
        return self._outbox_rows("status = ?", [status])

    def outbox_next_attempt_ms(self) -> int | None:
        """When the earliest pending row is due (None: nothing pending)."""
        with self._lock:
            return self._db.execute(
                "SELECT MIN(next_attempt_ms) FROM notification_outbox WHERE status = 'pending'"
            ).fetchone()[0]

    def outbox_pending_schedule(self) -> list[tuple[int, int]]:
        """(id, next attempt) of every pending row, without its payload (the index answers)."""
        with self._lock:
            return self._db.execute(
                "SELECT id, next_attempt_ms FROM notification_outbox WHERE status = 'pending'"
            ).fetchall()

    def outbox_unchanged(self, row: OutboxRow) -> bool:
        """Whether `row` is still pending with the attempts it was read with: a row read
        before another thread delivered or retried it must not be sent again."""
        with self._lock:
            found = self._db.execute(
                "SELECT status, attempts FROM notification_outbox WHERE id = ?", (row.id,)
            ).fetchone()
        return found == ("pending", row.attempts)

    def outbox_delivered(self, *, row_id: int, at_ms: int) -> None:
        self.outbox_delivered_many([(row_id, at_ms)])

    def outbox_delivered_many(self, marks: Iterable[tuple[int, int]]) -> None:
        """Mark rows delivered, (row id, when) each, in one transaction: a burst's marks
        cost one commit (each commit appends its pages to the WAL: ~45 µs a row alone)."""
        params = [(at_ms, row_id) for row_id, at_ms in marks]
        # One statement for one row: its own transaction (autocommit), no BEGIN and COMMIT.
        with self._transaction(durable=False, single=len(params) == 1) as db:
            db.executemany(
                "UPDATE notification_outbox SET status = 'delivered', delivered_ms = ?,"
                " attempts = attempts + 1, last_error = '' WHERE id = ?",
                params,
            )

    def outbox_retry(self, *, row_id: int, next_attempt_ms: int, error: str) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_ms = ?,"
                " last_error = ? WHERE id = ?",
                (next_attempt_ms, error, row_id),
            )

    def notifications_prune(self, *, before_ms: int) -> int:
        """Forget finished outbox rows made before `before_ms`, and log entries last sent
        before it (Alertmanager keeps its nflog 120 h the same way). Returns rows removed."""
        with self._transaction(durable=False) as db:
            removed = db.execute(
                "DELETE FROM notification_outbox WHERE status != 'pending' AND created_ms < ?",
                (before_ms,),
            ).rowcount
            removed += db.execute(
                "DELETE FROM notification_log WHERE sent_ms < ?", (before_ms,)
            ).rowcount
        return removed

    def outbox_failed(self, *, row_id: int, error: str) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE notification_outbox SET status = 'failed', attempts = attempts + 1,"
                " last_error = ? WHERE id = ?",
                (error, row_id),
            )


def _pending_row(row_id: int, row: dict) -> OutboxRow:
    """A row `outbox_enqueue` just wrote, as `outbox_due` would read it."""
    return OutboxRow(
        row_id,
        row["idempotency_key"],
        row["receiver"],
        row["integration"],
        row["kind"],
        row["payload"],
        "pending",
        0,
        row["created_ms"],
        row["deadline_ms"],
        "",
        row["created_ms"],
        None,
        row.get("notification"),
    )


def _new_episode(row: StoredAlert, alert: Alert) -> bool:
    """The engine's alert is not the continuation of the stored live one."""
    if alert.state == INACTIVE:
        return False  # the stored episode ends as usual (pending/firing → inactive)
    return row.active_at_ms != alert.active_at_ms or (
        row.state == FIRING and alert.state == PENDING
    )
