"""The customer notice level 4 puts up: a banner on the shop's pages and the public status
page, read from the open escalations of the state store.

``status_notice()`` -> ``{"title", "message", "since", "since_ms"}`` of the newest notice up
(None: all is well). Every page render asks (the ``status_notice`` context processor), so the
answer is kept for ``STATUS_NOTICE_CACHE_S`` (2 s) per process, and the state file is read
with a plain SQLite connection that only reads: no schema check, no write, and a missing file or
table is "no notice". The notice comes down when the escalation ends (the alert resolved).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime

__all__ = ["status_notice", "status_notice_clear_cache"]

CACHE_S = 2.0
_cache: tuple[float, str, dict | None] | None = None
_lock = threading.Lock()


def _state_path() -> str:
    from monitoring.monitor.config import settings_from_env

    return str(settings_from_env(dict(os.environ)).state_path)


def _read(path: str) -> dict | None:
    if not os.path.exists(path):
        return None  # nothing ever recorded (and no empty file made by asking)
    try:
        # Not `mode=ro`: a read-only connection can answer SQLITE_BUSY_RECOVERY while the
        # monitor writes the WAL; this one only reads all the same.
        db = sqlite3.connect(path, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        row = db.execute(
            "SELECT notice FROM alert_escalation WHERE ended_ms IS NULL AND notice IS NOT NULL"
            " ORDER BY level_at_ms DESC LIMIT 1"
        ).fetchone()
    except sqlite3.Error:  # no such table yet: nothing ever escalated
        return None
    finally:
        db.close()
    if row is None:
        return None
    notice = json.loads(row[0])
    since_ms = int(notice.get("since_ms", 0))
    return {
        "title": notice.get("title", ""),
        "message": notice.get("message", ""),
        "since_ms": since_ms,
        "since": datetime.fromtimestamp(since_ms / 1000, tz=UTC).isoformat(),
    }


def status_notice(path: str | None = None) -> dict | None:
    global _cache
    path = path or _state_path()
    now = time.monotonic()
    with _lock:
        if _cache is not None and _cache[1] == path and now - _cache[0] < CACHE_S:
            return _cache[2]
    notice = _read(path)
    with _lock:
        _cache = (now, path, notice)
    return notice


def status_notice_clear_cache() -> None:
    global _cache
    with _lock:
        _cache = None
