"""What every collector shares: the `Collector` base, a cached, time-limited reading and a
metric family builder.

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
from contextlib import contextmanager
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


class CachedReading:
    """Serve a reading at most `interval` seconds old; a caller waits at most `budget` seconds.

    A stale reading is refreshed in the background (one refresh at a time). If the refresh is
    not done within the budget the caller gets the last good reading, marked `stale`, and the
    refresh carries on for the next caller. Until a first reading exists the answer is `None`.

    `inline=True` refreshes in the calling thread instead: for SQLite, a local file with no
    server to hang on, whose queries `statement_deadline` interrupts at the budget (and whose
    in-memory test databases other threads cannot read while a test holds a transaction).
    A failed refresh is not logged at every scrape: `error` says what failed until one works.
    """

    def __init__(
        self,
        read: Callable[[], Reading],
        *,
        interval: float,
        budget: float,
        name: str,
        inline: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read
        self.interval = interval
        self.budget = budget
        self.name = name
        self.inline = inline
        self.clock = clock
        self.error: str | None = None
        self._lock = threading.Lock()
        self._value: Reading | None = None
        self._taken_at: float | None = None
        self._refresh: Future | None = None

    def _run_read(self) -> Reading:
        try:
            return self.read()
        finally:
            # A pool thread is not a request thread: Django would never close its connections.
            from django.db import connections

            connections.close_all()

    def _store(self, value: Reading | None, error: BaseException | None) -> None:
        with self._lock:
            if error is not None:
                if self.error is None:
                    logger.debug("collector %s failed: %r", self.name, error)
                self.error = f"{type(error).__name__}: {error}"[:300]
                return
            self.error = None
            self._value = value
            self._taken_at = self.clock()

    def _store_future(self, future: Future) -> None:
        if not future.cancelled():
            error = future.exception()
            self._store(None if error else future.result(), error)

    def _fresh(self) -> bool:
        return self._taken_at is not None and self.clock() - self._taken_at < self.interval

    def get(self) -> Reading | None:
        if self.inline:
            return self._get_inline()
        with self._lock:
            if self._fresh():
                return self._value
            started = None
            if self._refresh is None or self._refresh.done():
                self._refresh = started = background_executor().submit(self._run_read)
            refresh = self._refresh
        if started is not None:
            # Outside the lock: a refresh already done runs the callback right here.
            started.add_done_callback(self._store_future)
        try:
            refresh.result(timeout=self.budget)
        except FutureTimeout:
            pass
        except Exception:  # kept in self.error by _store_future; serve the last good reading
            pass
        return self._current(done=refresh.done())

    def _get_inline(self) -> Reading | None:
        if not self._fresh():
            try:
                self._store(self.read(), None)
            except Exception as exc:
                self._store(None, exc)
        return self._current(done=self.error is None)

    def age(self) -> float | None:
        """Seconds since the served reading was taken (None before the first one)."""
        with self._lock:
            return None if self._taken_at is None else self.clock() - self._taken_at

    def _current(self, *, done: bool) -> Reading | None:
        with self._lock:
            if self._value is None:
                return None
            if done and self.error is None:
                return self._value
            age = None if self._taken_at is None else round(self.clock() - self._taken_at, 3)
            return {**self._value, "stale": True, "age_seconds": age}


def cached_statistics(
    read: Callable[..., Reading], *, alias: str, interval: float, budget: float, name: str
) -> CachedReading:
    """A CachedReading of `read(alias=..., timeout=...)` on a database: in the calling thread
    with the budget as deadline on SQLite; in the background on a server, whose statements
    may run a few budgets long before the server stops them."""
    from django.db import connections

    inline = connections[alias].vendor == "sqlite"
    timeout = budget if inline else max(budget, 1.0) * 5
    return CachedReading(
        lambda: read(alias=alias, timeout=timeout),
        interval=interval,
        budget=budget,
        name=f"{name}-{alias}",
        inline=inline,
    )


@contextmanager
def statement_deadline(alias: str, seconds: float) -> Iterator[None]:
    """Within one transaction on `alias`, stop any statement running past `seconds`."""
    from django.db import connections, transaction

    connection = connections[alias]
    with transaction.atomic(using=alias):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [f"{int(seconds * 1000)}ms"]
                )
            yield
        elif connection.vendor == "sqlite":
            deadline = time.monotonic() + seconds
            raw = connection.connection
            # SQLite calls this every N virtual-machine steps; a true answer interrupts.
            raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            try:
                yield
            finally:
                raw.set_progress_handler(None, 0)
        else:
            yield


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


class Collector:
    """One source: `read()` gives the reading, `families(reading)` its Prometheus families.

    `snapshot()` (JSON) and `collect()` (Prometheus, at scrape time) are built from the same
    reading. A reading of `None` (none taken yet) is `unavailable()` in JSON and no families,
    but `add_status` still reports on the collector itself.
    """

    name: str = ""

    def read(self) -> Reading | None:
        raise NotImplementedError

    def families(self, reading: Reading) -> Families:
        raise NotImplementedError

    def add_status(self, families: Families) -> None:
        """Series about the source or the collector, present even without a reading."""

    def unavailable(self) -> Reading:
        return {"status": "unavailable"}

    def snapshot(self) -> Reading:
        reading = self.read()
        return self.unavailable() if reading is None else reading

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only, never while registering

    def collect(self) -> Iterator[Metric]:
        reading = self.read()
        families = Families() if reading is None else self.families(reading)
        self.add_status(families)
        return iter(families)


class CachedCollector(Collector):
    """A collector served from a `CachedReading`, which reports on its own refreshes."""

    def __init__(self, reading: CachedReading) -> None:
        self.reading = reading

    def read(self) -> Reading | None:
        return self.reading.get()

    def unavailable(self) -> Reading:
        return {"status": "unavailable", "error": self.reading.error}

    def add_status(self, families: Families) -> None:
        """Whether the last refresh worked and how old the served reading is: a collector that
        keeps failing shows up as `monitoring_collector_up 0`, not as silently old numbers."""
        families.gauge(
            "monitoring_collector_up",
            "1 if the collector's last refresh worked.",
            int(self.reading.error is None),
            collector=self.name,
        )
        age = self.reading.age()
        families.gauge(
            "monitoring_collector_reading_age_seconds",
            "Age of the reading the collector serves.",
            None if age is None else round(age, 3),
            collector=self.name,
        )
