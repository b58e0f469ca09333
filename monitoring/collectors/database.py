"""Database: connections, size, transactions, index use (server statistics), and the timing of
every query the application runs (Django's execute wrapper, installed on every connection).

PostgreSQL gives all of it. SQLite has no server: it reports its file and pages, and the rest is
unavailable (absent from Prometheus, `null` in JSON) rather than zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from monitoring.collectors import instruments
from monitoring.collectors.base import (
    CachedCollector,
    Families,
    Reading,
    cached_statistics,
    statement_deadline,
    unavailable_keys,
)
from monitoring.thresholds import threshold

# --- every query, timed (hot path: two metric updates, no allocation beyond the call) ---


class QueryTimer:
    """An execute wrapper: observes each statement's duration and counts the slow ones."""

    def __init__(self, slow_seconds: float) -> None:
        self.slow_seconds = slow_seconds
        self._observe = instruments.database_query_duration_seconds.observe
        self._count_slow = instruments.database_slow_queries_total.inc

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self._observe(elapsed)
            if elapsed >= self.slow_seconds:
                self._count_slow()


_query_timer: QueryTimer | None = None


def install_query_timer(*, connection: BaseDatabaseWrapper, **_: Any) -> None:
    """`connection_created` receiver: wrap the connection once (it reconnects with the same
    wrapper object, so a second `connection_created` must not wrap it twice)."""
    global _query_timer
    if _query_timer is None:
        _query_timer = QueryTimer(threshold("database", "slow_query_threshold") / 1000.0)
    if _query_timer not in connection.execute_wrappers:
        connection.execute_wrappers.append(_query_timer)


# --- server statistics ---

_PG_SERVER = """
SELECT current_setting('server_version'), current_setting('max_connections')::int,
       pg_database_size(current_database())
"""
_PG_CONNECTIONS = """
SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
WHERE backend_type = 'client backend' GROUP BY 1
"""
_PG_DATABASE = """
SELECT xact_commit, xact_rollback, deadlocks, blks_hit, blks_read
FROM pg_stat_database WHERE datname = current_database()
"""
_PG_TABLES = """
SELECT relname, seq_scan, coalesce(idx_scan, 0), n_live_tup FROM pg_stat_user_tables
ORDER BY relname
"""

_POSTGRES_ONLY = (
    "connections_active",
    "connections_idle",
    "connections_max",
    "connections_percent",
    "transactions_committed_total",
    "transactions_rolled_back_total",
    "deadlocks_total",
    "blocks_hit_total",
    "blocks_read_total",
)


def postgres_statistics(cursor) -> dict[str, Any]:
    cursor.execute(_PG_SERVER)
    version, max_connections, size = cursor.fetchone()
    cursor.execute(_PG_CONNECTIONS)
    by_state = dict(cursor.fetchall())
    cursor.execute(_PG_DATABASE)
    commits, rollbacks, deadlocks, hits, reads = cursor.fetchone()
    cursor.execute(_PG_TABLES)
    tables = {
        name: {"seq_scans_total": seq, "index_scans_total": idx, "live_rows": rows}
        for name, seq, idx, rows in cursor.fetchall()
    }
    open_connections = sum(by_state.values())
    return {
        "server_version": version,
        "size_bytes": size,
        # "Active" counts every open client connection: what max_connections limits.
        "connections_active": open_connections,
        "connections_idle": by_state.get("idle", 0),
        "connections_by_state": by_state,
        "connections_max": max_connections,
        "connections_percent": round(100.0 * open_connections / max_connections, 3),
        "transactions_committed_total": commits,
        "transactions_rolled_back_total": rollbacks,
        "deadlocks_total": deadlocks,
        "blocks_hit_total": hits,
        "blocks_read_total": reads,
        "tables": tables,
    }


def sqlite_statistics(cursor, name: str) -> dict[str, Any]:
    cursor.execute("SELECT sqlite_version()")
    (version,) = cursor.fetchone()
    pragmas = {}
    for pragma in ("page_count", "page_size", "freelist_count"):
        cursor.execute(f"PRAGMA {pragma}")
        pragmas[pragma] = cursor.fetchone()[0]
    path = Path(name)
    file_size = path.stat().st_size if path.is_file() else None
    return {
        "server_version": version,
        "size_bytes": pragmas["page_count"] * pragmas["page_size"],
        "file_size_bytes": file_size,
        "sqlite_page_count": pragmas["page_count"],
        "sqlite_page_size_bytes": pragmas["page_size"],
        "sqlite_freelist_pages": pragmas["freelist_count"],
        **{key: None for key in _POSTGRES_ONLY},
        "connections_by_state": None,
        "tables": None,
    }


def database_statistics(*, alias: str, timeout: float) -> Reading:
    """One reading of the server's statistics through Django's connection `alias`."""
    connection = connections[alias]
    with statement_deadline(alias, timeout), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            values = postgres_statistics(cursor)
        else:
            values = sqlite_statistics(cursor, str(connection.settings_dict["NAME"]))
    return statistics_reading(connection.vendor, values)


def statistics_reading(vendor: str, values: dict[str, Any]) -> Reading:
    flat = {k: v for k, v in values.items() if k not in ("tables", "connections_by_state")}
    return {"vendor": vendor, **values, "unavailable": unavailable_keys(flat)}


class DatabaseCollector(CachedCollector):
    """Server statistics (cached, see CachedReading) and, given `reachable`, `database_up`:
    whether the database answers a health check now, bounded by HEALTH_CHECK_TIMEOUT."""

    name = "database"

    def __init__(
        self,
        *,
        alias: str = "default",
        interval: float = 15.0,
        budget: float = 1.0,
        reachable: Callable[[], bool] | None = None,
    ) -> None:
        self.alias = alias
        self.reachable = reachable
        super().__init__(
            cached_statistics(
                database_statistics, alias=alias, interval=interval, budget=budget, name=self.name
            )
        )

    def snapshot(self) -> Reading:
        reading = self.read()
        threshold_ms = threshold("database", "slow_query_threshold")
        body = {"status": "unavailable"} if reading is None else reading
        return {"alias": self.alias, **body, "slow_query_threshold_ms": threshold_ms}

    def families(self, reading: Reading) -> Families:
        return families_from_reading(reading)

    def add_status(self, families: Families) -> None:
        if self.reachable is not None:
            families.gauge(
                "database_up",
                "1 if the database answered the health check (within HEALTH_CHECK_TIMEOUT).",
                int(self.reachable()),
                database=self.alias,
            )
        super().add_status(families)


_GAUGES = {
    "size_bytes": ("database_size_bytes", "Size of the database."),
    "file_size_bytes": ("database_file_size_bytes", "Size of the SQLite database file."),
    "connections_active": (
        "database_connections_active",
        "Open client connections to the server (what max_connections limits).",
    ),
    "connections_idle": ("database_connections_idle", "Open client connections that are idle."),
    "connections_max": ("database_connections_max", "The server's max_connections."),
    "sqlite_page_count": ("database_sqlite_pages", "Pages in the SQLite database."),
    "sqlite_page_size_bytes": ("database_sqlite_page_size_bytes", "SQLite page size."),
    "sqlite_freelist_pages": ("database_sqlite_freelist_pages", "Unused SQLite pages."),
}
_COUNTERS = {
    "transactions_committed_total": (
        "database_transactions_committed_total",
        "Transactions committed (pg_stat_database).",
    ),
    "transactions_rolled_back_total": (
        "database_transactions_rolled_back_total",
        "Transactions rolled back (pg_stat_database).",
    ),
    "deadlocks_total": ("database_deadlocks_total", "Deadlocks detected (pg_stat_database)."),
    "blocks_hit_total": ("database_blocks_hit_total", "Blocks found in the buffer cache."),
    "blocks_read_total": ("database_blocks_read_total", "Blocks read from disk."),
}


def families_from_reading(reading: Reading) -> Families:
    families = Families()
    for key, (name, doc) in _GAUGES.items():
        families.gauge(name, doc, reading.get(key))
    for key, (name, doc) in _COUNTERS.items():
        families.counter(name, doc, reading.get(key))
    for state, count in (reading.get("connections_by_state") or {}).items():
        families.gauge(
            "database_connections_by_state", "Client connections by state.", count, state=state
        )
    for table, stats in (reading.get("tables") or {}).items():
        families.counter(
            "database_table_seq_scans_total",
            "Sequential scans per table.",
            stats["seq_scans_total"],
            table=table,
        )
        families.counter(
            "database_table_index_scans_total",
            "Index scans per table.",
            stats["index_scans_total"],
            table=table,
        )
        families.gauge(
            "database_table_live_rows",
            "Estimated live rows per table.",
            stats["live_rows"],
            table=table,
        )
    return families
