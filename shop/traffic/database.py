"""The database faults of the slow-database and error-bursts profiles, done for real.

A maintenance job that takes an exclusive lock is the everyday way a healthy database becomes
slow for a live shop: a schema change, a VACUUM FULL, a backup copying the file. The
simulator plays that job on the shop's own database (it shares it, as with --staff-user):

- SQLite: `BEGIN EXCLUSIVE` keeps every other connection from reading or writing; the app
  waits up to its busy timeout (20 s, config/settings/base.py) and then fails with
  "database is locked".
- PostgreSQL: `LOCK TABLE catalog_product IN ACCESS EXCLUSIVE MODE` (what ALTER TABLE takes)
  holds up every statement on the catalog. The app sets no lock timeout, so it waits as long
  as the lock is held; a hold longer than `APP_LOCK_WAIT_S` (the error-bursts profile) drops
  the app's connections instead, as a failover does, so statements in flight fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shop.traffic.profiles import DatabaseLock

logger = logging.getLogger(__name__)

# How long the app waits for a lock before failing (SQLite's busy timeout in the settings).
APP_LOCK_WAIT_S = 20.0

TERMINATE_SQL = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


class DatabaseLocker:
    """Takes `lock` on a schedule read from `elapsed` until `over()`; the hold itself is wall
    time (`sleep`), as that is what makes the app's statements slow."""

    def __init__(
        self,
        *,
        lock: DatabaseLock,
        connect: Callable[[], Any],
        vendor: str,
        elapsed: Callable[[], float],
        over: Callable[[], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if vendor not in ("sqlite", "postgresql"):
            raise ValueError(f"database faults need SQLite or PostgreSQL, not {vendor}")
        self.lock = lock
        self.connect = connect
        self.vendor = vendor
        self.elapsed = elapsed
        self.over = over
        self.sleep = sleep
        self.holds = 0

    def run(self) -> None:
        connection = self.connect()
        try:
            next_at = self.lock.every_s / 2
            while not self.over():
                if self.elapsed() < next_at:
                    self.sleep(0.05)
                    continue
                self.hold(connection)
                next_at += self.lock.every_s
        finally:
            connection.close()

    def hold(self, connection: Any) -> None:
        cursor = connection.cursor()
        if self.vendor == "postgresql" and self.lock.hold_s > APP_LOCK_WAIT_S:
            cursor.execute(TERMINATE_SQL)
            logger.info("dropped the app's database connections")
            self.holds += 1
            return
        if self.vendor == "sqlite":
            cursor.execute("BEGIN EXCLUSIVE")
        else:
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE catalog_product IN ACCESS EXCLUSIVE MODE")
        try:
            self.sleep(self.lock.hold_s)
        finally:
            cursor.execute("ROLLBACK")
            cursor.close()
        self.holds += 1
