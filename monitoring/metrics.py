"""The project's metric registry: primitives and collectors, one family per name.

Public surface (``__all__``):

- ``Counter``, ``Gauge``, ``Histogram``: prometheus_client's classes, declared once at module
  level, recorded in this module's registry (never in prometheus_client's global one). Hot code
  keeps pre-bound children (``REQUESTS.labels("GET", "/x", "200")`` once, then ``.inc()``).
  ``Gauge`` defaults to ``multiprocess_mode="livesum"``: the sum over live processes (in-flight
  work, pool sizes); pass another prometheus_client mode when that is wrong for a gauge.
  A counter whose label values are known in advance binds them at start (``start_at_zero``),
  so its series exist at 0 before the first event and ``increase()`` sees that event.
- ``register_collector(collector)``: adds a custom collector (anything whose ``collect()``
  yields prometheus_client metric families, e.g. the system/database/redis collectors). It runs
  in the process that answers the scrape. Families of the same name from several collectors are
  merged into one (same type; another type is dropped and logged), and a collector family
  whose name a primitive holds is dropped: the output has one HELP and TYPE per name, always.
  A collector that raises loses its own families for that scrape, nothing else (logged, and
  counted in ``monitoring_collector_errors_total{collector}``, at 0 from registration).
- ``exposition() -> bytes``: everything in Prometheus text format 0.0.4 (``CONTENT_TYPE``).
- ``sample_values(*names)``: the primitives' current samples by name, merged over processes
  the same way (for JSON endpoints that report the same numbers).
- ``multiprocess_dir()``, ``prepare_multiprocess_dir(path)``, ``mark_process_dead(pid)``: the
  process plumbing used by ``config/gunicorn.conf.py`` and the Celery worker start.

Several processes (gunicorn workers, Celery pool processes): when ``PROMETHEUS_MULTIPROC_DIR``
is set before prometheus_client is imported, every process writes its values into its own
mmap files there, and ``exposition()`` merges them with ``monitoring.multiprocess_reader``.
Counters and histograms are summed over all files, including those of dead processes, so a
worker that dies or is recycled loses nothing; ``mark_process_dead`` (gunicorn's
``child_exit``) removes the dead process's ``live*`` gauge files. ``process_*`` series are
reported per live process (``pid`` label) from /proc.

Without that variable (tests, management commands) values live in memory of this one process
and ``exposition()`` renders them the same way.
"""

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import prometheus_client
import prometheus_client.multiprocess
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from monitoring.multiprocess_reader import (
    MultiprocessReader,
    ProcessCollector,
    prepare_multiprocess_dir,
)

__all__ = [
    "CONTENT_TYPE",
    "Counter",
    "Gauge",
    "Histogram",
    "exposition",
    "mark_process_dead",
    "multiprocess_dir",
    "prepare_multiprocess_dir",
    "register_collector",
    "sample_values",
    "start_at_zero",
]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series double the output and Prometheus does not need them.
prometheus_client.disable_created_metrics()


def multiprocess_dir() -> Path | None:
    """The shared directory of per-process metric files, or None when in-process only."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


# A configured but missing directory would fail the first metric write: make it.
if multiprocess_dir() is not None:
    multiprocess_dir().mkdir(parents=True, exist_ok=True)


def mark_process_dead(pid: int) -> None:
    """Bookkeeping when a worker exits: remove its live-only gauge files (counters stay)."""
    directory = multiprocess_dir()
    if directory is not None:
        prometheus_client.multiprocess.mark_process_dead(pid, str(directory))


def exposed_name(family: Metric) -> str:
    """The name on the family's HELP and TYPE lines in text format 0.0.4."""
    return family.name + "_total" if family.type == "counter" else family.name


class _Registry:
    """Primitives (names checked for collisions) and custom collectors (merged by name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._primitives: list = []
        self._collectors: dict[int, _Guarded] = {}
        self._refused: set[tuple[str, str]] = set()
        # In-process primitives render through prometheus_client.
        self.in_process = CollectorRegistry(auto_describe=False)

    def _claim(self, names: Iterable[str], owner: str) -> None:
        with self._lock:
            for name in names:
                if name in self._names:
                    raise ValueError(f"metric {name!r} already registered by {self._names[name]}")
            for name in names:
                self._names[name] = owner

    def add_primitive(self, metric) -> None:
        base = metric._name
        self._claim({base, base + "_total", base + "_bucket", base + "_sum", base + "_count"}, base)
        self._primitives.append(metric)
        if multiprocess_dir() is None:
            self.in_process.register(metric)

    def primitives(self) -> list:
        with self._lock:
            return list(self._primitives)

    def add_collector(self, collector) -> None:
        guarded = _Guarded(collector)
        with self._lock:
            self._collectors[id(collector)] = guarded
        COLLECTOR_ERRORS.labels(guarded.name)  # at 0 from now on

    def remove_collector(self, collector) -> None:
        """For tests: forget a collector registered with add_collector."""
        with self._lock:
            self._collectors.pop(id(collector), None)

    def _refuse(self, family: Metric, owner: str, reason: str) -> None:
        key = (exposed_name(family), owner)
        if key not in self._refused:  # once per name and collector, not at every scrape
            self._refused.add(key)
            logger.error("metric family %s from %s left out: %s", key[0], owner, reason)

    def collect(self) -> Iterator[Metric]:
        """Every collector's families, one family per name (``generate_latest`` renders it)."""
        with self._lock:
            collectors = list(self._collectors.values())
            taken = dict(self._names)
        merged: dict[str, Metric] = {}
        for guarded in collectors:
            for family in guarded.collect():
                name = exposed_name(family)
                if family.name in taken or name in taken:
                    self._refuse(family, guarded.name, f"a primitive of {taken.get(name)} has it")
                    continue
                into = merged.get(name)
                if into is None:
                    into = merged[name] = Metric(family.name, family.documentation, family.type)
                elif into.type != family.type:
                    self._refuse(family, guarded.name, f"{family.type}, not {into.type}")
                    continue
                into.samples.extend(family.samples)
        return iter(merged.values())


class _Guarded:
    """A collector whose failure costs its own families only, never the whole scrape."""

    def __init__(self, collector) -> None:
        self.collector = collector
        self.name = getattr(collector, "guard_name", None) or type(collector).__name__

    def collect(self):
        try:
            families = list(self.collector.collect())
        except Exception:
            logger.exception("metrics collector %s failed; its metrics are left out", self.name)
            COLLECTOR_ERRORS.labels(self.name).inc()
            return []
        return families


REGISTRY = _Registry()


class _Registered:
    """Mixin: a parent metric joins our registry; its labelled children do not."""

    def __init__(self, name, documentation, labelnames=(), **kwargs):
        kwargs["registry"] = None
        super().__init__(name, documentation, labelnames, **kwargs)
        if "_labelvalues" not in kwargs:
            REGISTRY.add_primitive(self)


class Counter(_Registered, prometheus_client.Counter):
    """A counter; the ``_total`` suffix is added in the output when missing."""


class Gauge(_Registered, prometheus_client.Gauge):
    def __init__(self, name, documentation, labelnames=(), **kwargs):
        kwargs.setdefault("multiprocess_mode", "livesum")
        super().__init__(name, documentation, labelnames, **kwargs)


class Histogram(_Registered, prometheus_client.Histogram):
    """A histogram; buckets default to prometheus_client's (5 ms … 10 s)."""


COLLECTOR_ERRORS = Counter(
    "monitoring_collector_errors_total",
    "Scrapes in which a collector failed (its metrics were left out).",
    ["collector"],
)


def start_at_zero(counter: Counter, label_values: Iterable[str | tuple[str, ...]]) -> None:
    """Bind a child per label value (or tuple of values) known in advance: its series exists
    at 0 from now on (in this process's file, under several processes), so the first event
    after a start is an increase that ``increase()`` sees, not the birth of a series."""
    for values in label_values:
        counter.labels(*((values,) if isinstance(values, str) else values))


def register_collector(collector) -> None:
    """Add a custom collector; its ``collect()`` runs at scrape time in the scraping process."""
    REGISTRY.add_collector(collector)


_reader: MultiprocessReader | None = None
_processes: ProcessCollector | None = None
_reader_lock = threading.Lock()


def _reader_for(directory: Path) -> MultiprocessReader:
    global _reader, _processes
    with _reader_lock:
        if _reader is None or _reader.directory != directory:
            _reader = MultiprocessReader(directory)
            if _processes is None:
                _processes = ProcessCollector(directory)
                REGISTRY.add_collector(_processes)
            _processes.directory = directory
        return _reader


def _multiprocess_text() -> str:
    directory = multiprocess_dir()
    return "" if directory is None else _reader_for(directory).text()


def sample_values(*names: str) -> list[tuple[str, dict[str, str], float]]:
    """Current ``(sample name, labels, value)`` of the primitives' samples called ``names``
    (e.g. ``"http_requests_total"``, ``"x_bucket"``), merged over processes like the endpoint."""
    wanted = set(names)
    directory = multiprocess_dir()
    if directory is not None:
        return _reader_for(directory).samples(wanted)
    return [
        (sample.name, dict(sample.labels), sample.value)
        for metric in REGISTRY.primitives()
        for family in metric.collect()
        for sample in family.samples
        if sample.name in wanted
    ]


def exposition() -> bytes:
    """All metrics in Prometheus text format 0.0.4: the primitives (merged over processes, or
    this process's), then the collectors' families."""
    if multiprocess_dir() is None:
        primitives = generate_latest(REGISTRY.in_process)
    else:
        try:
            primitives = _multiprocess_text().encode()
        except OSError:  # an unreadable directory: still serve what the collectors have
            logger.exception("cannot read the metrics directory %s", multiprocess_dir())
            primitives = b""
    return primitives + generate_latest(REGISTRY)
