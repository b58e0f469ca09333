"""The database collector on SQLite and PostgreSQL, and the timing of every query."""

import sqlite3
import time
from contextlib import closing

import pytest
from django.db import connection
from prometheus_client import CollectorRegistry

from monitoring.collectors import instruments
from monitoring.collectors.database import (
    DatabaseCollector,
    QueryTimer,
    database_statistics,
    families_from_reading,
    sqlite_statistics,
    statistics_reading,
)
from shop.catalog.models import Category
from tests.faults import sample_value

DURATION = instruments.database_query_duration_seconds
SLOW = instruments.database_slow_queries_total

pytestmark = pytest.mark.django_db


def registry_of(reading):
    registry = CollectorRegistry()

    class Fixed:
        def collect(self):
            return iter(families_from_reading(reading))

    registry.register(Fixed())
    return registry


def test_every_query_is_timed_through_the_execute_wrapper():
    before = sample_value(DURATION, "database_query_duration_seconds_count")
    Category.objects.create(name="Posters", slug="posters")
    assert Category.objects.count() == 1
    after = sample_value(DURATION, "database_query_duration_seconds_count")
    assert after >= before + 2
    assert sum(isinstance(w, QueryTimer) for w in connection.execute_wrappers) == 1


def _slow_statement() -> str:
    if connection.vendor == "postgresql":
        return "SELECT pg_sleep(0.06)"
    connection.ensure_connection()
    connection.connection.create_function("pause", 1, lambda s: time.sleep(s) or 0)
    return "SELECT pause(0.06)"


@pytest.mark.db
def test_slow_queries_are_counted_against_the_threshold():
    statement = _slow_statement()
    before = sample_value(SLOW, "database_slow_queries_total")
    with connection.execute_wrapper(QueryTimer(slow_seconds=0.05)), connection.cursor() as cur:
        cur.execute(statement)
        cur.execute("SELECT 1")
    # The app-wide timer (threshold 1000 ms) did not count it; ours (50 ms) counted one.
    assert sample_value(SLOW, "database_slow_queries_total") == before + 2 - 1


def test_sqlite_reports_what_it_has_and_marks_the_rest_unavailable(tmp_path):
    path = tmp_path / "shop.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    with closing(sqlite3.connect(path)) as db:
        reading = statistics_reading("sqlite", sqlite_statistics(db.cursor(), str(path)))
    assert reading["vendor"] == "sqlite"
    assert reading["sqlite_page_count"] > 1
    assert reading["file_size_bytes"] == path.stat().st_size
    assert reading["size_bytes"] == reading["sqlite_page_count"] * reading["sqlite_page_size_bytes"]
    assert reading["connections_active"] is None
    assert "connections_active" in reading["unavailable"]
    assert "deadlocks_total" in reading["unavailable"]
    registry = registry_of(reading)
    assert registry.get_sample_value("database_size_bytes") == reading["size_bytes"]
    # Unavailable is absent, never zero.
    assert registry.get_sample_value("database_connections_active") is None
    assert registry.get_sample_value("database_deadlocks_total") is None


@pytest.mark.postgres
def test_postgres_statistics():
    Category.objects.create(name="Cards", slug="cards")
    reading = database_statistics(alias="default", timeout=5)
    assert reading["vendor"] == "postgresql"
    assert reading["unavailable"] == []
    assert reading["connections_max"] >= reading["connections_active"] >= 1
    assert reading["connections_percent"] > 0
    assert reading["size_bytes"] > 1_000_000
    assert reading["transactions_committed_total"] > 0
    assert reading["deadlocks_total"] >= 0
    assert "catalog_category" in reading["tables"]
    registry = registry_of(reading)
    assert registry.get_sample_value("database_connections_active") >= 1
    assert registry.get_sample_value("database_connections_max") == reading["connections_max"]
    assert registry.get_sample_value("database_deadlocks_total") is not None
    table = {"table": "catalog_category"}
    assert registry.get_sample_value("database_table_seq_scans_total", table) is not None
    assert registry.get_sample_value("database_table_index_scans_total", table) is not None


@pytest.mark.django_db(transaction=True)
def test_collector_reads_in_the_background_within_its_budget():
    collector = DatabaseCollector(alias="default", interval=60, budget=5)
    snapshot = collector.snapshot()
    assert snapshot["vendor"] == connection.vendor
    assert snapshot["slow_query_threshold_ms"] == 1000
    names = {family.name for family in collector.collect()}
    assert "database_size_bytes" in names
