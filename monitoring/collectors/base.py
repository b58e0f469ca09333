"""What every collector shares: a cached, time-limited reading and a metric family builder.

A collector reads its source once into a plain dict (the *reading*); `snapshot()` renders that
dict as JSON and `collect()` as Prometheus metric families, so both always agree.
A value the source cannot give is `None`: absent from Prometheus output, `null` in JSON, and
named in the reading's `"unavailable"` list — never a made-up zero.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

logger = logging.getLogger("monitoring.collectors")

Reading = dict[str, Any]

_executor_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None


def background_executor() -> ThreadPoolExecutor:
    """One small pool per process (made after a gunicorn fork, never inherited from the master)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="collector")
            _executor_pid = os.getpid()
        return _executor


def _close_thread_connections() -> None:
    # A pool thread is not a request thread: Django would never close its connections.
    from django.db import connections

    connections.close_all()


class CachedReading:
    """Serve a reading at most `interval` seconds old; a caller waits at most `budget` seconds.

    A stale reading is refreshed in the background (one refresh at a time). If the refresh is
    not done within the budget the caller gets the last good reading, marked `stale`, and the
    refresh carries on for the next caller. Until a first reading exists the answer is `None`.
    """

    def __init__(
        self,
        read: Callable[[], Reading],
        *,
        interval: float,
        budget: float,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read
        self.interval = interval
        self.budget = budget
        self.name = name
        self.clock = clock
        self._lock = threading.Lock()
        self._value: Reading | None = None
        self._taken_at: float | None = None
        self._refresh: Future | None = None

    def _run_read(self) -> Reading:
        try:
            return self.read()
        finally:
            _close_thread_connections()

    def _store(self, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            if future.exception() is not None:
                logger.warning("collector %s failed: %r", self.name, future.exception())
            return
        with self._lock:
            self._value = future.result()
            self._taken_at = self.clock()

    def get(self) -> Reading | None:
        with self._lock:
            fresh = self._taken_at is not None and self.clock() - self._taken_at < self.interval
            if fresh:
                return self._value
            if self._refresh is None or self._refresh.done():
                self._refresh = background_executor().submit(self._run_read)
                self._refresh.add_done_callback(self._store)
            refresh = self._refresh
        try:
            refresh.result(timeout=self.budget)
        except FutureTimeout:
            pass
        except Exception:  # logged by _store; serve the last good reading
            pass
        with self._lock:
            if self._value is None:
                return None
            if refresh.done() and refresh.exception() is None:
                return self._value
            age = None if self._taken_at is None else round(self.clock() - self._taken_at, 3)
            return {**self._value, "stale": True, "age_seconds": age}


def unavailable_keys(values: dict[str, Any]) -> list[str]:
    return sorted(key for key, value in values.items() if value is None)


class Families:
    """Builds metric families by name; a `None` value adds nothing (unavailable, not zero)."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def _add(self, kind: type, name: str, doc: str, value: Any, labels: dict[str, str]) -> None:
        if value is None:
            return
        family = self._families.get(name)
        if family is None:
            family = kind(name, doc, labels=list(labels))
            self._families[name] = family
        family.add_metric([str(v) for v in labels.values()], float(value))

    def gauge(self, name: str, doc: str, value: Any, **labels: str) -> None:
        self._add(GaugeMetricFamily, name, doc, value, labels)

    def counter(self, name: str, doc: str, value: Any, **labels: str) -> None:
        self._add(CounterMetricFamily, name, doc, value, labels)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())
