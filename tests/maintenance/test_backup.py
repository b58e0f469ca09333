"""Backups are verified by restoring them before they count; retention; weekly maintenance;
the backup metrics. `db` tests run on SQLite and again on PostgreSQL."""

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from maintenance.backup import (
    BackupError,
    backup_create,
    backup_verify,
    backups,
    backups_prune,
    database_maintain,
)
from monitoring.collectors.backup import BackupCollector
from shop.periodic import schedule_intervals


def _users(tables: dict[str, int]) -> int:
    [count] = [n for name, n in tables.items() if name.endswith("auth_user")]
    return count


@pytest.mark.db
@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_with_the_rows_of_the_database(tmp_path):
    get_user_model().objects.create_user("ada", password="x" * 12)
    get_user_model().objects.create_user("bob", password="x" * 12)
    call_command("backup", dir=tmp_path, keep=3)
    [made] = backups(tmp_path)
    assert made.suffix == (".pgdump" if connection.vendor == "postgresql" else ".sqlite3")
    assert not list(tmp_path.glob(".*"))  # no partial file left

    backup = backup_create(tmp_path)
    assert _users(backup.tables) == 2
    # Restoring it again gives the same rows; other counts are refused.
    backup_verify(backup.path, backup.tables)
    wrong = {**backup.tables, next(iter(backup.tables)): 10**6}
    with pytest.raises(BackupError, match="row counts differ"):
        backup_verify(backup.path, wrong)


@pytest.mark.db
@pytest.mark.django_db(transaction=True)
def test_a_corrupted_backup_does_not_verify(tmp_path):
    backup = backup_create(tmp_path)
    data = backup.path.read_bytes()
    backup.path.write_bytes(data[: len(data) // 3])
    with pytest.raises(BackupError):
        backup_verify(backup.path, backup.tables)


@pytest.mark.db
@pytest.mark.django_db(transaction=True)
def test_a_failed_backup_exits_with_a_message_and_keeps_nothing(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(CommandError, match="backup failed, no backup kept"):
        call_command("backup", dir=not_a_directory / "backups")


@pytest.mark.postgres
@pytest.mark.db
@pytest.mark.django_db(transaction=True)
def test_without_pg_dump_no_backup_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # postgresql-client not installed
    with pytest.raises(CommandError, match="pg_dump not found"):
        call_command("backup", dir=tmp_path / "backups")
    assert list((tmp_path / "backups").iterdir()) == []


@pytest.mark.db
@pytest.mark.django_db(transaction=True)
def test_the_weekly_maintenance_runs():
    expected = "VACUUM ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize"
    assert database_maintain() == expected
    call_command("database_maintain")


def _fake_backup(directory: Path, name: str, age: float) -> Path:
    path = directory / name
    path.write_bytes(b"x" * 10)
    taken = time.time() - age
    os.utime(path, (taken, taken))
    return path


def test_retention_keeps_the_newest_and_removes_stale_partials(tmp_path):
    old = [_fake_backup(tmp_path, f"pasargad-{i}.sqlite3", 1000 * (5 - i)) for i in range(5)]
    stale = _fake_backup(tmp_path, ".pasargad-x.sqlite3.partial", 2 * 86400)
    running = _fake_backup(tmp_path, ".pasargad-y.sqlite3.partial", 10)
    other = _fake_backup(tmp_path, "notes.txt", 10**6)
    removed = backups_prune(tmp_path, keep=2)
    assert set(removed) == {*old[:3], stale}
    assert sorted(tmp_path.iterdir()) == sorted([*old[3:], running, other])
    with pytest.raises(ValueError):
        backups_prune(tmp_path, keep=0)


def _samples(collector: BackupCollector) -> dict[str, float]:
    return {s.name: s.value for family in collector.collect() for s in family.samples}


def test_the_metrics_read_the_newest_backup_from_disk(tmp_path):
    collector = BackupCollector(tmp_path / "backups")
    # No backup at all: 0, so BackupTooOld fires for a database never backed up.
    assert _samples(collector) == {"backup_last_success_timestamp_seconds": 0}
    (tmp_path / "backups").mkdir()
    _fake_backup(tmp_path / "backups", "pasargad-1.pgdump", 9 * 86400)
    newest = _fake_backup(tmp_path / "backups", "pasargad-2.pgdump", 3600)
    _fake_backup(tmp_path / "backups", ".pasargad-3.pgdump.partial", 0)
    assert _samples(collector) == {
        "backup_last_success_timestamp_seconds": newest.stat().st_mtime,
        "backup_last_size_bytes": 10,
    }


def test_the_project_registry_exports_the_backup_metrics():
    from monitoring.collectors import register_collectors

    registered = []
    import monitoring.collectors as package

    was, package._registered = package._registered, False
    try:
        register_collectors(registered.append)
    finally:
        package._registered = was
    [collector] = [c for c in registered if isinstance(c, BackupCollector)]
    assert collector.directory == Path(settings.BACKUP_DIR)


def test_backup_and_maintenance_are_scheduled_weekly():
    from config.celery import app

    intervals = schedule_intervals(settings.CELERY_BEAT_SCHEDULE)
    week = timedelta(days=7).total_seconds()
    assert intervals["database-backup"] == ("maintenance.backup", week)
    assert intervals["database-maintain"] == ("maintenance.database_maintain", week)
    app.loader.import_default_modules()
    assert {"maintenance.backup", "maintenance.database_maintain"} <= set(app.tasks)


@pytest.mark.postgres
@pytest.mark.db
@pytest.mark.django_db(transaction=True)
def test_a_backup_whose_restore_fails_is_not_kept(tmp_path):
    import psycopg

    params = connection.get_connection_params()
    scratch = f"{connection.settings_dict['NAME']}_backup_verify"
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    # A session in the scratch database: the verification cannot drop and restore into it.
    try:
        with psycopg.connect(**{**params, "dbname": scratch}):
            with pytest.raises(CommandError, match="backup failed, no backup kept"):
                call_command("backup", dir=tmp_path)
            assert list(tmp_path.iterdir()) == []
    finally:
        with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
