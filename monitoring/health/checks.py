"""Health checks: one small class per backend, listed in one place (`health_checks()`).

A check's `run(timeout=...)` returns the facts an operator needs and raises `ServiceDown` or
`ServiceDegraded`. Each check sets its own connect and socket timeouts, so a hung server frees
the check's thread; `run_checks` runs the checks side by side and waits at most the timeout, so
a hung server never holds the request. One check per target runs at a time: a request that
finds it still running waits for that run instead of starting another thread.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery
from django.conf import settings

from monitoring.collectors.celery import (
    celery_queue_lengths,
    celery_queue_names,
    celery_workers_answering,
)
from monitoring.collectors.redis import redis_client
from monitoring.thresholds import threshold

logger = logging.getLogger("monitoring.health")

OK, DEGRADED, DOWN, DISABLED = "ok", "degraded", "down", "disabled"


class ServiceDown(Exception):
    """The component does not work. The message is shown to monitoring readers."""


class ServiceDegraded(Exception):
    """The component works but is near a limit."""

    def __init__(self, reason: str, facts: dict[str, Any]) -> None:
        super().__init__(reason)
        self.facts = facts


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    latency_ms: float | None
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "latency_ms": self.latency_ms}
        if self.error:
            body["error"] = self.error
        return {**body, **self.facts}


class HealthCheck:
    name: str = ""

    def key(self) -> tuple:
        """The target's identity: runs of the same target share one thread."""
        return (self.name,)

    def enabled(self) -> bool:
        return True

    def run(self, *, timeout: float) -> dict[str, Any]:
        raise NotImplementedError


class _Deadline:
    """Shuts a connected socket down after `seconds`, so a blocked read in a client library
    (psycopg has no read timeout) returns with an error instead of waiting forever."""

    def __init__(self, fileno: int, seconds: float) -> None:
        self._sock = socket.socket(fileno=os.dup(fileno))
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self.expired = False

    def _expire(self) -> None:
        self.expired = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._sock.close()


_LIBPQ_OPTIONS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"}


@dataclass
class DatabaseCheck(HealthCheck):
    """A separate short-lived connection: the request's own connection is never the one that
    hangs, and a hung server is bounded by `connect_timeout` and a socket deadline."""

    alias: str = "default"
    name: str = "database"

    def _settings(self) -> dict[str, Any]:
        return settings.DATABASES[self.alias]

    def key(self) -> tuple:
        db = self._settings()
        return (self.name, db["ENGINE"], db.get("HOST"), db.get("PORT"), str(db.get("NAME")))

    def run(self, *, timeout: float) -> dict[str, Any]:
        db = self._settings()
        if "postgresql" in db["ENGINE"]:
            return self._run_postgres(db, timeout)
        return self._run_sqlite(db, timeout)

    def _run_sqlite(self, db: dict[str, Any], timeout: float) -> dict[str, Any]:
        name = str(db["NAME"])
        conn = sqlite3.connect(name, timeout=timeout, uri=name.startswith("file:"))
        try:
            (version,) = conn.execute("SELECT sqlite_version()").fetchone()
        except sqlite3.Error as exc:
            raise ServiceDown(f"sqlite: {exc}") from None
        finally:
            conn.close()
        path = Path(name)
        return {
            "vendor": "sqlite",
            "server_version": version,
            "file_size_bytes": path.stat().st_size if path.is_file() else None,
            "connections_used": None,
            "connections_max": None,
        }

    def _run_postgres(self, db: dict[str, Any], timeout: float) -> dict[str, Any]:
        params = {
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "dbname": db.get("NAME"),
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            # libpq counts whole seconds and at least 2; the deadline below is exact.
            "connect_timeout": max(2, math.ceil(timeout)),
            "options": f"-c statement_timeout={int(timeout * 1000)}",
            "application_name": "pasargad-health",
            # TLS and the like, as the app's own connection uses them.
            **{k: v for k, v in (db.get("OPTIONS") or {}).items() if k in _LIBPQ_OPTIONS},
        }
        try:
            conn = psycopg.connect(autocommit=True, **{k: v for k, v in params.items() if v})
        except psycopg.Error as exc:
            raise ServiceDown(_first_line(exc)) from None
        try:
            with _Deadline(conn.fileno(), timeout), conn.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('server_version'),"
                    " current_setting('max_connections')::int,"
                    " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
                )
                version, max_connections, used = cursor.fetchone()
        except psycopg.Error as exc:
            raise ServiceDown(_first_line(exc)) from None
        finally:
            conn.close()
        facts = {
            "vendor": "postgresql",
            "server_version": version,
            "connections_used": used,
            "connections_max": max_connections,
            "connections_percent": round(100.0 * used / max_connections, 1),
        }
        if facts["connections_percent"] >= threshold("database", "connection_utilization"):
            raise ServiceDegraded("connection utilisation above the threshold", facts)
        return facts


@dataclass
class RedisCheck(HealthCheck):
    url: str = ""
    name: str = "redis"

    def key(self) -> tuple:
        return (self.name, self.url)

    def enabled(self) -> bool:
        return bool(self.url)

    def run(self, *, timeout: float) -> dict[str, Any]:
        client = redis_client(self.url, timeout=timeout)
        try:
            info = client.info()
        except redis.RedisError as exc:
            raise ServiceDown(f"{type(exc).__name__}: {_first_line(exc)}") from None
        finally:
            client.close()
        facts = {
            "server_version": info.get("redis_version"),
            "used_memory_bytes": info.get("used_memory"),
            "memory_fragmentation_ratio": info.get("mem_fragmentation_ratio"),
            "connected_clients": info.get("connected_clients"),
            "blocked_clients": info.get("blocked_clients"),
            "role": info.get("role"),
        }
        if (facts["blocked_clients"] or 0) > threshold("redis", "blocked_clients"):
            raise ServiceDegraded("blocked clients above the threshold", facts)
        return facts


@dataclass
class CeleryCheck(HealthCheck):
    """Workers answering a broadcast, the queues they consume, and the broker's queue lengths."""

    broker_url: str = ""
    app: Celery | None = None  # the project's app unless a test brings its own
    name: str = "celery"

    def key(self) -> tuple:
        return (self.name, self.broker_url)

    def enabled(self) -> bool:
        return bool(self.broker_url)

    def run(self, *, timeout: float) -> dict[str, Any]:
        from config.celery import app as project_app

        app = self.app or project_app
        client = redis_client(self.broker_url, timeout=timeout)
        try:
            queues = celery_queue_names(app=app, client=client)
            lengths = celery_queue_lengths(client=client, queues=queues)
            # The broadcast waits for replies: keep room for the connection inside the timeout.
            workers = celery_workers_answering(app=app, timeout=max(0.2, timeout / 2))
        except (redis.RedisError, OSError) as exc:
            raise ServiceDown(f"broker: {type(exc).__name__}") from None
        finally:
            client.close()
        facts = {"workers_answering": len(workers), "workers": workers, "queue_length": lengths}
        if not workers:
            raise ServiceDown("no worker answered")
        limit = threshold("application", "queue_length")
        if any(length > limit for length in lengths.values()):
            raise ServiceDegraded("a queue is longer than the threshold", facts)
        return facts


def health_checks() -> list[HealthCheck]:
    """Every check, in the order they are reported."""
    return [
        DatabaseCheck(alias="default"),
        RedisCheck(url=settings.REDIS_URL),
        CeleryCheck(broker_url=settings.REDIS_URL),
    ]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# --- running checks side by side, each bounded by the timeout ---

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_running: dict[tuple, Future] = {}


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():  # never reuse a pool from before a fork
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")
        _pool_pid = os.getpid()
        _running.clear()
    return _pool


def _timed_run(check: HealthCheck, timeout: float) -> CheckResult:
    started = time.perf_counter()
    status, facts, error = OK, {}, None
    try:
        facts = check.run(timeout=timeout)
    except ServiceDegraded as exc:
        status, facts, error = DEGRADED, exc.facts, str(exc)
    except ServiceDown as exc:
        status, error = DOWN, str(exc)
    except Exception:
        logger.exception("health check %s failed unexpectedly", check.name)
        status, error = DOWN, "unexpected error (see the application log)"
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return CheckResult(check.name, status, latency_ms, facts, error)


def _submit(check: HealthCheck, timeout: float) -> Future:
    key = check.key()
    with _pool_lock:
        pool = _executor()
        future = _running.get(key)
        if future is None or future.done():
            future = pool.submit(_timed_run, check, timeout)
            _running[key] = future
        return future


def run_checks(checks: list[HealthCheck], *, timeout: float | None = None) -> list[CheckResult]:
    """Run `checks` concurrently; a check without an answer within `timeout` is down."""
    timeout = settings.HEALTH_CHECK_TIMEOUT if timeout is None else timeout
    futures = {check.name: _submit(check, timeout) for check in checks if check.enabled()}
    wait(list(futures.values()), timeout=timeout)
    results = []
    for check in checks:
        future = futures.get(check.name)
        if future is None:
            results.append(CheckResult(check.name, DISABLED, None))
        elif future.done():
            results.append(future.result())
        else:
            results.append(
                CheckResult(
                    check.name,
                    DOWN,
                    round(timeout * 1000, 3),
                    error=f"no answer within {timeout} s",
                )
            )
    return results


def overall_status(results: list[CheckResult]) -> str:
    statuses = {result.status for result in results}
    if DOWN in statuses:
        return DOWN
    if DEGRADED in statuses:
        return DEGRADED
    return OK


# --- is the database reachable? (the public health endpoint and `database_up`) ---

_reachable_lock = threading.Lock()
_reachable: dict[str, tuple[float, bool]] = {}  # alias -> (monotonic time, reachable)


def database_reachable(*, alias: str = "default") -> bool:
    """Whether the database check of `alias` is not down, bounded by HEALTH_CHECK_TIMEOUT.

    The answer is reused for HEALTH_BASIC_CACHE_SECONDS per process: probes and scrapes in
    between cost nothing. For as long again, a reachable answer is still served while the next
    check runs in the background, so no probe waits on a check (a new connection, tens of ms
    on a busy host); an unreachable one is checked again in the caller, so a return is seen at
    once."""
    answer = _reachable.get(alias)
    fresh = settings.HEALTH_BASIC_CACHE_SECONDS
    if answer is not None:
        age = time.monotonic() - answer[0]
        if age < fresh:
            return answer[1]
        if answer[1] and age < 2 * fresh:
            _refresh_in_background(alias)
            return True
    return _check_reachable(alias)


_refreshing: set[str] = set()


def _check_reachable(alias: str) -> bool:
    (result,) = run_checks([DatabaseCheck(alias=alias)])
    reachable = result.status != DOWN
    with _reachable_lock:
        _reachable[alias] = (time.monotonic(), reachable)
    return reachable


def _refresh_in_background(alias: str) -> None:
    with _reachable_lock:
        if alias in _refreshing:
            return
        _refreshing.add(alias)

    def refresh() -> None:
        try:
            _check_reachable(alias)
        finally:
            with _reachable_lock:
                _refreshing.discard(alias)

    threading.Thread(target=refresh, name="health-db-refresh", daemon=True).start()
