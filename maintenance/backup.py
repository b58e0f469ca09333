"""Database backups: create, verify by restoring, prune; and the weekly database maintenance.

A backup is written under a hidden temporary name, restored into a scratch database whose row
counts must equal the source's (counted in the same snapshot the backup was taken from), and
only then renamed to `pasargad-<UTC time>.<ext>`. So every file with that name is a verified
backup, and its modification time is when it was taken: the metric reads exactly that.

PostgreSQL: `pg_dump --format=custom` under an exported snapshot, restored with `pg_restore`
into `<name>_backup_verify`. SQLite: the online backup API, restored into a scratch file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db import connections

PREFIX = "pasargad-"
EXTENSIONS = {"postgresql": ".pgdump", "sqlite": ".sqlite3"}


class BackupError(Exception):
    """A backup could not be made or did not verify; nothing was kept as good."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    taken_at: float  # Unix time: the file's modification time
    tables: dict[str, int]  # rows per table, as verified


def _vendor(alias: str) -> str:
    vendor = connections[alias].vendor
    if vendor not in EXTENSIONS:
        raise BackupError(f"no backup method for the {vendor} database backend")
    return vendor


def backups(directory: Path) -> list[Path]:
    """The good backups in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if p.name.startswith(PREFIX) and p.suffix in EXTENSIONS.values() and p.is_file()
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def latest(directory: Path) -> Backup | None:
    """The newest good backup (rows not counted), or None."""
    found = backups(directory)
    if not found:
        return None
    stat = found[-1].stat()
    return Backup(found[-1], stat.st_size, stat.st_mtime, {})


# SQLite -------------------------------------------------------------------------------------


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in sorted(names)}


def _sqlite_dump(alias: str, target: Path) -> dict[str, int]:
    name = str(connections[alias].settings_dict["NAME"])
    # A connection of its own, not Django's (whose IMMEDIATE transactions would block writers),
    # and one read transaction: the rows counted are the rows copied.
    source = sqlite3.connect(name, uri=name.startswith("file:"), isolation_level=None, timeout=20)
    try:
        source.execute("BEGIN DEFERRED")
        counts = _sqlite_counts(source)
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)
        finally:
            destination.close()
        source.execute("COMMIT")
    finally:
        source.close()
    return counts


def _sqlite_restore_counts(dump: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as scratch:
        restored = Path(scratch) / "restored.sqlite3"
        source = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
        destination = sqlite3.connect(restored)
        try:
            source.backup(destination)
            check = destination.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"integrity check of the restored copy: {check}")
            return _sqlite_counts(destination)
        except sqlite3.DatabaseError as e:
            raise BackupError(f"cannot restore {dump.name}: {e}") from e
        finally:
            source.close()
            destination.close()


# PostgreSQL ---------------------------------------------------------------------------------

_PG_TABLES = """
    SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
    FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
"""


def _pg_counts(cursor) -> dict[str, int]:
    cursor.execute(_PG_TABLES)
    names = sorted(row[0] for row in cursor.fetchall())
    counts = {}
    for name in names:
        cursor.execute(f"SELECT count(*) FROM {name}")  # quoted by quote_ident above
        counts[name] = cursor.fetchone()[0]
    return counts


def _pg_env(settings: dict) -> dict[str, str]:
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if settings.get(key):
            env[var] = str(settings[key])
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings["PASSWORD"])
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} not found (install postgresql-client)")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")


def _pg_connect(alias: str, dbname: str | None = None):
    connection = connections[alias]
    params = connection.get_connection_params()
    if dbname is not None:
        params["dbname"] = dbname
    raw = connection.get_new_connection(params)
    return raw


def _pg_dump(alias: str, target: Path) -> dict[str, int]:
    settings = connections[alias].settings_dict
    raw = _pg_connect(alias)
    try:
        raw.autocommit = False
        with raw.cursor() as cursor:
            # pg_dump reads the snapshot the rows are counted in: the same rows, exactly.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            counts = _pg_counts(cursor)
            _run(
                ["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-owner",
                 f"--file={target}", settings["NAME"]],
                _pg_env(settings),
            )  # fmt: skip
        raw.rollback()
    finally:
        raw.close()
    return counts


def _pg_restore_counts(alias: str, dump: Path) -> dict[str, int]:
    settings = connections[alias].settings_dict
    scratch = f"{settings['NAME']}_backup_verify"[:63]
    admin = _pg_connect(alias)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
            cursor.execute(f'CREATE DATABASE "{scratch}"')
        try:
            _run(
                ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={scratch}",
                 str(dump)],
                _pg_env(settings),
            )  # fmt: skip
            restored = _pg_connect(alias, scratch)
            try:
                with restored.cursor() as cursor:
                    return _pg_counts(cursor)
            finally:
                restored.close()
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
    finally:
        admin.close()


# The functions ------------------------------------------------------------------------------


def backup_verify(dump: Path, expected: dict[str, int], *, alias: str = "default") -> None:
    """Restore `dump` into a scratch database; raise BackupError unless every table has the
    expected rows."""
    if _vendor(alias) == "postgresql":
        restored = _pg_restore_counts(alias, dump)
    else:
        restored = _sqlite_restore_counts(dump)
    if restored != expected:
        differ = sorted(
            f"{t}: {expected.get(t)} expected, {restored.get(t)} restored"
            for t in set(expected) | set(restored)
            if expected.get(t) != restored.get(t)
        )
        raise BackupError("restored row counts differ: " + "; ".join(differ[:5]))


def backup_create(
    directory: Path, *, alias: str = "default", now: datetime | None = None
) -> Backup:
    """Take a backup of `alias` into `directory`, verify it, and only then give it its name.
    On any failure the partial file is removed and BackupError raised."""
    vendor = _vendor(alias)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    final = directory / f"{PREFIX}{stamp}{EXTENSIONS[vendor]}"
    partial = directory / f".{final.name}.partial"
    try:
        try:
            dump = _pg_dump if vendor == "postgresql" else _sqlite_dump
            counts = dump(alias, partial)
            backup_verify(partial, counts, alias=alias)
        except BackupError:
            raise
        except Exception as e:  # a database error while dumping or restoring
            raise BackupError(f"backup of the {vendor} database failed: {e}") from e
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    stat = final.stat()
    return Backup(final, stat.st_size, stat.st_mtime, counts)


def backups_prune(directory: Path, *, keep: int) -> list[Path]:
    """Remove all but the newest `keep` good backups (and partial files left by a killed run);
    return what was removed."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    removed = backups(directory)[:-keep]
    # A partial file a day old was left by a run that was killed (a running one is younger).
    stale = time.time() - 86400
    if directory.is_dir():
        removed += [p for p in directory.glob(f".{PREFIX}*.partial") if p.stat().st_mtime < stale]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def database_maintain(*, alias: str = "default") -> str:
    """The weekly maintenance: VACUUM ANALYZE on PostgreSQL, PRAGMA optimize on SQLite.
    Returns the statement run."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        statement = "VACUUM ANALYZE"
        raw = _pg_connect(alias)
        try:
            raw.autocommit = True  # VACUUM cannot run inside a transaction
            with raw.cursor() as cursor:
                cursor.execute(statement)
        finally:
            raw.close()
    elif connection.vendor == "sqlite":
        statement = "PRAGMA optimize"
        with connection.cursor() as cursor:
            cursor.execute(statement)
    else:
        raise BackupError(f"no maintenance for the {connection.vendor} database backend")
    return statement
