"""In-memory sample store: the monitor's short-term TSDB.

Public surface (stable; the scraper, the rule engine and the HTTP API build on it):

- ``Labels``: a label set, a sorted tuple of ``(name, value)`` pairs including ``__name__``.
  ``labels_from(mapping_or_pairs)`` builds one (empty values are dropped, as in Prometheus).
- ``Matcher(name, op, value)`` with ``op`` one of ``"="``, ``"!="``, ``"=~"``, ``"!~"``; regexes
  are fully anchored like Prometheus'.  ``Matcher.matches(value)``.
- ``STALE_NAN`` / ``is_stale(value)``: Prometheus' staleness marker (NaN with bits
  ``0x7ff0000000000002``), distinct from an ordinary NaN.
- ``SeriesSamples(labels, timestamps, values)``: one series' samples in a window (lists, ms).
- ``SampleStore(retention_seconds=6*3600)``:
  - ``append(labels, t_ms, value)``: add a sample; an out-of-order or duplicate timestamp is
    ignored (Prometheus rejects it).
  - ``append_scrape(source, samples, t_ms)``: one scrape's full result for a source (a target);
    ``samples`` is an iterable of ``(labels, value)``.  Series the source exported last time but
    not now get a staleness marker at ``t_ms``, as Prometheus does.
  - ``mark_source_stale(source, t_ms)``: the source went away (target down or removed): all its
    series get a staleness marker.
  - ``select(matchers, start_ms, end_ms) -> list[SeriesSamples]``: series matching all
    matchers with their samples in ``[start_ms, end_ms]`` (staleness markers included; the
    engine interprets them), in creation order like Prometheus' head (it decides the order
    in which floats are summed, so results match to the last bit).  Series with no sample in
    the window are left out.
  - ``select_raw(...) -> list[RawSeries]``: the same as ``RawSeries(labels, base, offsets,
    values, lo, hi, …)``: the stored arrays themselves with the window's bounds (timestamps
    are base + offset); no copying, no per-sample Python work (the engine's path).
  - ``series(matchers, start_ms, end_ms) -> list[Labels]``: label sets with a sample in window.
  - ``label_names() -> list[str]``, ``label_values(name) -> list[str]`` (sorted).
  - ``gc(now_ms)``: drop samples older than the retention (in batches: up to retention/16
    late), and series left empty.
  - ``stats() -> dict``: series and sample counts.
  - ``close()``: nothing here; ``monitoring.tsdb.disk.DiskStore`` (same surface, persisted)
    syncs and releases its directory.

Memory: a series keeps its timestamps as 32-bit offsets from a per-series base plus float64
values, 12 bytes a sample; 10,000 series x 6 h at 15 s stays well under 300 MB.
One lock guards everything: one writer (the scraper/evaluator) and many readers (the API).
"""

from __future__ import annotations

import re
import struct
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

Labels = tuple[tuple[str, str], ...]

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
_OFFSET_MAX = 2**31 - 1  # of the 32-bit offsets a series starts with (24.8 days of ms)


def is_stale(value: float) -> bool:
    """True only for Prometheus' staleness marker, not for an ordinary NaN."""
    return value != value and struct.pack("<d", value) == _STALE_BYTES


_STALE_BYTES = struct.pack("<d", STALE_NAN)


def labels_from(source: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """A canonical label set: sorted by name, empty values dropped."""
    pairs = dict(source)
    if "" in pairs.values():
        pairs = {k: v for k, v in pairs.items() if v != ""}
    return tuple(sorted(pairs.items()))


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Prometheus anchors every label regex: `=~"a|b"` means `^(?:a|b)$`.
    return re.compile(f"(?:{pattern})\\Z", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if self.op in ("=~", "!~"):
            _compiled(self.value)  # raises re.error on a bad pattern

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = _compiled(self.value).match(value) is not None
        return found if self.op == "=~" else not found


@dataclass
class SeriesSamples:
    labels: Labels
    timestamps: list[int]
    values: list[float]


@dataclass(slots=True)
class RawSeries:
    labels: Labels
    base: int  # timestamps are base + offsets[i] (ms)
    offsets: array  # array("i"), or "q" past 24 days; shared with the store: read only [lo, hi)
    values: array  # array('d'), likewise
    lo: int
    hi: int
    has_nan: bool = True  # False: no NaN (so no staleness marker) in the series
    last_drop: int | None = None  # ms of the series' latest drop in value (None: never)


@dataclass
class _Series:
    labels: Labels
    base: int  # ms; timestamps are stored as offsets from it
    id: int = 0  # creation order: selections return series in it, as Prometheus' head does
    offsets: array = field(default_factory=lambda: array("i"))
    values: array = field(default_factory=lambda: array("d"))
    # What lets the engine skip scanning a window: any NaN held at all, and when the value
    # last went down (a counter reset, for a counter).
    nans: int = 0
    last_drop: int | None = None
    # Persistence only (monitoring.tsdb.disk): the last timestamp already written to a block.
    flushed_t: int | None = None

    def last_t(self) -> int | None:
        return self.base + self.offsets[-1] if self.offsets else None

    def append(self, t_ms: int, value: float) -> bool:
        last = self.last_t()
        if last is not None and t_ms <= last:
            return False
        off = t_ms - self.base
        if (off > _OFFSET_MAX or off < -_OFFSET_MAX) and self.offsets.typecode == "i":
            self._rebase(t_ms)
            off = t_ms - self.base
            if off > _OFFSET_MAX or off < -_OFFSET_MAX:
                # It spans more than 24 days (a long MONITOR_RETENTION, a rule unit test's
                # series): 64-bit offsets from now on, rather than refusing the sample.
                self.offsets = array("q", self.offsets)
        if value != value:
            self.nans += 1
        elif self.values and value < self.values[-1]:
            self.last_drop = t_ms
        self.offsets.append(off)
        self.values.append(value)
        return True

    def _rebase(self, t_ms: int) -> None:
        new_base = self.base + self.offsets[0] if self.offsets else t_ms
        shift = new_base - self.base
        self.offsets = array(self.offsets.typecode, (o - shift for o in self.offsets))
        self.base = new_base

    def window(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        lo = bisect_left(self.offsets, start_ms - self.base)
        hi = bisect_right(self.offsets, end_ms - self.base)
        return lo, hi


class SampleStore:
    def __init__(self, retention_seconds: float = 6 * 3600) -> None:
        self.retention_ms = int(retention_seconds * 1000)
        self._lock = threading.RLock()
        self._series: dict[Labels, _Series] = {}
        # Inverted index: label name -> value -> label sets having it.
        self._postings: dict[str, dict[str, set[Labels]]] = {}
        self._source_series: dict[str, set[Labels]] = {}
        self._next_id = 0
        self.samples_appended = (
            0  # accepted since start: prometheus_tsdb_head_samples_appended_total
        )

    # -- writing -----------------------------------------------------------------------------
    # A persistent store (monitoring.tsdb.disk) sets `_journaled` and overrides `_log_batch`,
    # which every write calls under the lock with what it added, in the order it added it.
    _journaled = False
    SCRAPE, SOURCE_GONE = 1, 2  # _log_batch flags

    def _log_batch(
        self,
        source: str | None,
        t_ms: int,
        new: list[_Series],
        refs: array,
        values: array,
        stale: array,
        flags: int,
    ) -> None:
        """Persist one write: new series, accepted samples (refs = series ids) and the series
        given a staleness marker. Nothing to do in memory."""

    def _series_for(self, key: Labels, t_ms: int, new: list[_Series]) -> _Series:
        series = self._series.get(key)
        if series is None:
            self._next_id += 1
            series = self._series[key] = _Series(key, t_ms, self._next_id)
            for name, val in key:
                self._postings.setdefault(name, {}).setdefault(val, set()).add(key)
            new.append(series)
        return series

    def append(self, labels: Labels | Mapping[str, str], t_ms: int, value: float) -> bool:
        key = labels if isinstance(labels, tuple) else labels_from(labels)
        t_ms, value = int(t_ms), float(value)
        with self._lock:
            new: list[_Series] = []
            series = self._series_for(key, t_ms, new)
            if not series.append(t_ms, value):
                return False
            self.samples_appended += 1
            if self._journaled:
                self._log_batch(
                    None, t_ms, new, array("I", [series.id]), array("d", [value]), array("I"), 0
                )
            return True

    def append_scrape(
        self, source: str, samples: Iterable[tuple[Labels | Mapping[str, str], float]], t_ms: int
    ) -> None:
        t_ms = int(t_ms)
        with self._lock:
            seen: set[Labels] = set()
            new: list[_Series] = []
            refs, values = array("I"), array("d")
            journaled = self._journaled
            appended = 0
            for labels, value in samples:
                key = labels if isinstance(labels, tuple) else labels_from(labels)
                seen.add(key)
                value = float(value)
                series = self._series_for(key, t_ms, new)
                if series.append(t_ms, value):
                    appended += 1
                    if journaled:
                        refs.append(series.id)
                        values.append(value)
            self.samples_appended += appended
            stale = array("I")
            for gone in self._source_series.get(source, set()) - seen:
                self._mark_stale(gone, t_ms, stale)
            self._source_series[source] = seen
            if journaled:
                self._log_batch(source, t_ms, new, refs, values, stale, self.SCRAPE)

    def mark_source_stale(self, source: str, t_ms: int) -> None:
        t_ms = int(t_ms)
        with self._lock:
            stale = array("I")
            for key in self._source_series.pop(source, set()):
                self._mark_stale(key, t_ms, stale)
            if self._journaled:
                self._log_batch(source, t_ms, [], array("I"), array("d"), stale, self.SOURCE_GONE)

    def _mark_stale(self, key: Labels, t_ms: int, marked: array) -> None:
        series = self._series.get(key)
        if series is not None and series.values and not is_stale(series.values[-1]):
            if series.append(t_ms, STALE_NAN):
                marked.append(series.id)

    def close(self) -> None:
        """Release what the store holds on disk (nothing in memory)."""

    def gc(self, now_ms: int) -> int:
        """Drop samples older than the retention; returns how many series were removed.

        A series' arrays are copied to drop their head, so that is done once the expired part
        is a sixteenth of the series (or all of it), not on every call: expired samples stay
        up to retention/16 longer instead of every sample being copied every minute.  The
        lock is taken per series, so scrapes and queries wait for one series at most."""
        cutoff = now_ms - self.retention_ms
        removed = 0
        with self._lock:
            keys = list(self._series)
        for key in keys:
            with self._lock:
                series = self._series.get(key)
                if series is None:
                    continue
                n = len(series.offsets)
                lo = bisect_left(series.offsets, cutoff - series.base)
                if lo == 0 or (lo < n and lo * 16 < n):
                    continue
                # New arrays, not in-place deletes: readers may hold the old ones.
                series.offsets = series.offsets[lo:]
                series.values = series.values[lo:]
                if series.nans:
                    series.nans = sum(1 for v in series.values if v != v)
                if not series.offsets:
                    self._drop(key)
                    removed += 1
        return removed

    def _drop(self, key: Labels) -> None:
        del self._series[key]
        for name, val in key:
            values = self._postings[name]
            values[val].discard(key)
            if not values[val]:
                del values[val]
                if not values:
                    del self._postings[name]

    # -- reading -----------------------------------------------------------------------------
    def _candidates(self, matchers: Iterable[Matcher]) -> list[_Series]:
        matchers = list(matchers)
        sets: list[set[Labels]] = []
        rest: list[Matcher] = []
        for m in matchers:
            if m.op == "=" and m.value != "":
                sets.append(self._postings.get(m.name, {}).get(m.value, set()))
            elif m.op == "=~" and not m.matches(""):
                # Only values present for this name can match: union their postings.
                hit: set[Labels] = set()
                for val, keys in self._postings.get(m.name, {}).items():
                    if m.matches(val):
                        hit |= keys
                sets.append(hit)
            else:
                rest.append(m)
        if sets:
            sets.sort(key=len)
            keys = set(sets[0]).intersection(*sets[1:]) if len(sets) > 1 else sets[0]
        else:
            keys = self._series.keys()
        out = []
        for key in keys:
            if rest:
                d = dict(key)
                if not all(m.matches(d.get(m.name, "")) for m in rest):
                    continue
            out.append(self._series[key])
        out.sort(key=attrgetter("id"))
        return out

    def select_raw(
        self, matchers: Iterable[Matcher], start_ms: int, end_ms: int
    ) -> list[RawSeries]:
        """Like ``select`` without copying: the stored arrays and the window's bounds.

        Safe to read without the lock: appends only add past ``hi``, and ``gc``/rebasing
        replace a series' arrays instead of changing them in place."""
        out = []
        with self._lock:
            for series in self._candidates(matchers):
                lo, hi = series.window(start_ms, end_ms)
                if lo < hi:
                    out.append(
                        RawSeries(
                            series.labels,
                            series.base,
                            series.offsets,
                            series.values,
                            lo,
                            hi,
                            series.nans > 0,
                            series.last_drop,
                        )
                    )
        return out

    def select(
        self, matchers: Iterable[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesSamples]:
        return [
            SeriesSamples(
                r.labels,
                [r.base + o for o in r.offsets[r.lo : r.hi]],
                r.values[r.lo : r.hi].tolist(),
            )
            for r in self.select_raw(matchers, start_ms, end_ms)
        ]

    def series(self, matchers: Iterable[Matcher], start_ms: int, end_ms: int) -> list[Labels]:
        with self._lock:
            found = []
            for series in self._candidates(matchers):
                lo, hi = series.window(start_ms, end_ms)
                if lo < hi:
                    found.append(series.labels)
        return sorted(found)

    def label_names(self) -> list[str]:
        with self._lock:
            return sorted(self._postings)

    def label_values(self, name: str) -> list[str]:
        with self._lock:
            return sorted(self._postings.get(name, {}))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "series": len(self._series),
                "samples": sum(len(s.offsets) for s in self._series.values()),
            }
