"""Diagnostic (no goal): the floor with the pipeline's per-alert work, done a burst at a time.

`notify_floor.py` is the least a durable webhook notifier in one Python process does, and it
ties Alertmanager. This one adds, per alert and per group, the work the notifier's own pipeline
does before a send, with the notifier's own functions where there is one, but done a whole
POST at a time, with no per-group objects, stages or statements:

- each alert validated as `POST /api/v2/alerts` does (`alert_parse`) and fingerprinted;
- routed and grouped by the real route tree (`Route.match`, `Route.group_key`) of the bench's
  configuration;
- deduplicated against the notification log (one `SELECT … IN` a burst, `needs_update`);
- an idempotency key a notification (the same text and SHA-256 as `Notification`'s);
- one outbox row and one log entry a notification, all written with one statement a table
  and one commit, before any send;
- Alertmanager's webhook body (version 4, with `idempotencyKey`), sent over libcurl's multi
  interface from one thread, the rows marked delivered a batch at a time.

What it leaves out: inhibition, silences and time intervals (the bench has none of them, and
the pipeline skips them then), retries, metrics, group timers (`group_wait: 0s`: every group
is due at once). If this ties Alertmanager where the monitor does not, a batch pipeline can
close the gap; if it does not, the per-alert work itself is too much for one interpreter.

    python bench/notify_batch_floor.py [--sizes 1,10,100] [--rounds 5]
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from notify_floor import CurlSender, run, serve_alerts, start_serving  # noqa: E402

HEADERS = ["Content-Type: application/json", "Expect:"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL, receiver TEXT NOT NULL,
    integration TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, delivered_ms INTEGER,
    UNIQUE (idempotency_key, integration));
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_ms);
CREATE TABLE IF NOT EXISTS nlog (
    receiver TEXT NOT NULL, group_key TEXT NOT NULL, firing TEXT NOT NULL,
    resolved TEXT NOT NULL, sequence INTEGER NOT NULL, sent_ms INTEGER NOT NULL,
    PRIMARY KEY (receiver, group_key));
"""


def serve(port: int, config_path: str, db_path: str) -> None:
    """The batch notifier: POST /api/v2/alerts → rows → webhook sends, until killed."""
    import orjson

    from monitoring.monitor.state import LogEntry
    from monitoring.notify.config import config_load
    from monitoring.notify.notification import _common, _key_text
    from monitoring.notify.received import AlertRejected, alert_parse
    from monitoring.notify.routing import Route
    from monitoring.notify.stages.dedup import needs_update
    from monitoring.rules.gofmt import rfc3339_or_zero

    config = config_load(config_path, env={})
    root = Route.build(config.route)
    webhooks = {name: [w.url for w in r.webhook_configs] for name, r in config.receivers.items()}

    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    db_lock = threading.Lock()

    def delivered(ids: list) -> None:
        now = int(time.time() * 1000)
        with db_lock:
            db.executemany(
                "UPDATE outbox SET status = 'delivered', delivered_ms = ?,"
                " attempts = attempts + 1 WHERE id = ?",
                [(now, row_id) for row_id in ids],
            )

    sender = CurlSender(delivered)

    def take(body: bytes) -> None:
        documents = orjson.loads(body)
        now = int(time.time() * 1000)
        # Routed and grouped: (receiver, group key) → its alerts.
        groups: dict[tuple[str, str], list] = {}
        labels_of: dict[tuple[str, str], dict] = {}
        for document in documents:
            try:
                alert = alert_parse(document, now_ms=now, resolve_timeout_ms=300_000)
            except AlertRejected:
                continue
            fp = alert.fingerprint
            for route in root.match(alert.labels):
                key = (route.options.receiver, route.group_key(alert.labels))
                if key not in groups:
                    groups[key], labels_of[key] = [], route.group_labels(alert.labels)
                groups[key].append((fp, alert))
        if not groups:
            return
        with db_lock:
            # The log entries of every group of the burst, in one statement.
            found = {}
            keys = list(groups)
            for start in range(0, len(keys), 400):
                part = keys[start : start + 400]
                found.update(
                    ((r, g), LogEntry(r, g, frozenset(orjson.loads(f)), frozenset(), s, t))
                    for r, g, f, s, t in db.execute(
                        "SELECT receiver, group_key, firing, sequence, sent_ms FROM nlog"
                        " WHERE group_key IN (" + ", ".join("?" * len(part)) + ")",
                        [g for _, g in part],
                    )
                )
            rows, logs, sends = [], [], []
            for (receiver, group_key), members in groups.items():
                entry = found.get((receiver, group_key))
                firing = frozenset(fp for fp, _ in members)
                if not needs_update(
                    entry,
                    firing,
                    frozenset(),
                    send_resolved=False,
                    repeat_interval_ms=4 * 3_600_000,
                    now_ms=now,
                ):
                    continue
                sequence = entry.sequence + 1 if entry else 0
                members.sort(key=lambda m: (m[1].starts_at_ms, m[0]))
                states = tuple(_State(fp, "firing", a.starts_at_ms) for fp, a in members)
                text = _key_text(receiver, group_key, sequence, states)
                idempotency_key = hashlib.sha256(text.encode()).hexdigest()[:32]
                alerts = [
                    {
                        "status": "firing",
                        "labels": a.labels,
                        "annotations": a.annotations,
                        "startsAt": rfc3339_or_zero(a.starts_at_ms),
                        "endsAt": rfc3339_or_zero(None),
                        "generatorURL": a.generator_url,
                        "fingerprint": fp,
                    }
                    for fp, a in members
                ]
                body = orjson.dumps(
                    {
                        "receiver": receiver,
                        "status": "firing",
                        "alerts": alerts,
                        "groupLabels": labels_of[(receiver, group_key)],
                        "commonLabels": _common(a.labels for _, a in members),
                        "commonAnnotations": _common(a.annotations for _, a in members),
                        "externalURL": "",
                        "version": "4",
                        "groupKey": group_key,
                        "truncatedAlerts": 0,
                        "idempotencyKey": idempotency_key,
                    }
                )
                payload = orjson.dumps(
                    {"receiver": receiver, "group_key": group_key, "sequence": sequence,
                     "alerts": alerts}
                ).decode()  # fmt: skip
                for i, url in enumerate(webhooks[receiver]):
                    integration = f"webhook/{i}"
                    rows += (idempotency_key, receiver, integration, "webhook", payload, now,
                             now + 600_000, now)  # fmt: skip
                    sends.append((idempotency_key, integration, url, body))
                logs.append((receiver, group_key, orjson.dumps(sorted(firing)).decode(), "[]",
                             sequence, now))  # fmt: skip
            if not logs:
                return
            db.execute("BEGIN IMMEDIATE")
            ids = {}
            for start in range(0, len(rows), 8 * 400):
                part = rows[start : start + 8 * 400]
                ids.update(
                    ((k, i), row_id)
                    for row_id, k, i in db.execute(
                        "INSERT INTO outbox (idempotency_key, receiver, integration, kind,"
                        " payload, status, next_attempt_ms, deadline_ms, created_ms) VALUES "
                        + ", ".join(["(?, ?, ?, ?, ?, 'pending', ?, ?, ?)"] * (len(part) // 8))
                        + " ON CONFLICT (idempotency_key, integration) DO NOTHING"
                        " RETURNING id, idempotency_key, integration",
                        part,
                    )
                )
            db.executemany(
                "INSERT INTO nlog (receiver, group_key, firing, resolved, sequence, sent_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (receiver, group_key) DO UPDATE SET"
                " firing = excluded.firing, resolved = excluded.resolved,"
                " sequence = excluded.sequence, sent_ms = excluded.sent_ms",
                logs,
            )
            db.execute("COMMIT")
        sender.send(
            [
                (ids[(k, i)], url, body, [*HEADERS, f"Idempotency-Key: {k}"])
                for k, i, url, body in sends
                if (k, i) in ids
            ]
        )

    serve_alerts(port, take, sender)


class _State:
    """What `_key_text` reads of an alert."""

    __slots__ = ("fingerprint", "status", "starts_at_ms")

    def __init__(self, fingerprint: str, status: str, starts_at_ms: int) -> None:
        self.fingerprint, self.status, self.starts_at_ms = fingerprint, status, starts_at_ms


def start_batch_floor(workdir: Path, config_text: str, token: str) -> tuple[subprocess.Popen, str]:
    """In place of `latency.start_monitor`: this notifier, on the bench's configuration."""
    config = workdir / "batch-floor.yml"
    config.write_text(config_text)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    return start_serving(__file__, [str(config), str(workdir / "b.sqlite3")], env)


if __name__ == "__main__":
    run(serve, start_batch_floor)
