"""The sample store persisted on local disk: ``open_store(directory, retention_seconds)``.

``DiskStore`` is a ``SampleStore`` (same reads, same writes, all samples of the retention
window in memory) that also logs every write to a write-ahead log (``wal``) and, every
``block_range`` of data, compacts what it logged into a block file (``block``). Opening a
directory loads the blocks, replays the log after them and resumes where the last process
stopped, killed or not: samples, staleness markers, series refs (so creation order) and which
series each scrape target exported last (so a series gone while the monitor was down still
gets its staleness marker at the next scrape).

    directory/lock              flock'ed while a process has the store open
    directory/wal/00000042      log segments (see wal.py); record types below
    directory/blocks/00000042.block   compacted samples of every segment before 42

Log records (``encoding.frame``):

    SERIES   refs and label sets of series seen for the first time (``labels_encode``)
    SAMPLES  one write: t (i64 ms), flags (u8: 1 a scrape replacing its source's series,
             2 the source went away, 4 has a source), source length (u16), n (u32), m (u32),
             source (utf-8), n refs (u32), n values (f64), m refs given a staleness marker
    MEMBERS  a source and the refs it exported last (written after each cut)

A compaction cuts the log (starts a new segment, beginning with the SERIES of every live series
and the MEMBERS of every source), writes every sample logged before the cut into one block and
then deletes the segments before the cut. ``gc`` compacts when the head spans ``block_range``
(or the log passed ``wal_max_bytes``) and deletes blocks wholly older than the retention.

Damage never stops the store from opening: a log tail that is torn or fails its checksum is
cut off (see wal.py), a block that cannot be read is renamed ``*.corrupt`` and skipped, each
with a warning.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from monitoring.tsdb.block import SUFFIX, BlockMeta, block_read, block_write
from monitoring.tsdb.encoding import LabelTable, frame, labels_encode
from monitoring.tsdb.store import _OFFSET_MAX, STALE_NAN_BITS, Labels, SampleStore, _Series
from monitoring.tsdb.wal import WriteAheadLog

__all__ = ["DiskStore", "StoreLockedError", "open_store"]

logger = logging.getLogger(__name__)

SERIES, SAMPLES, MEMBERS = 1, 2, 3
HAS_SOURCE = 4
_SAMPLES = struct.Struct("<qBHII")
_MEMBERS = struct.Struct("<HI")
BLOCK_RANGE_MS = 2 * 3600_000
WAL_MAX_BYTES = 256 * 1024 * 1024


class StoreLockedError(RuntimeError):
    """Another process has this store directory open."""


def open_store(
    directory: str | Path, retention_seconds: float, *, now_ms: int | None = None, **options
) -> DiskStore:
    """Open (or create) the store in ``directory``, loading what it holds."""
    return DiskStore(directory, retention_seconds, now_ms=now_ms, **options)


class DiskStore(SampleStore):
    def __init__(
        self,
        directory: str | Path,
        retention_seconds: float,
        *,
        now_ms: int | None = None,
        block_range_ms: int = BLOCK_RANGE_MS,
        wal_max_bytes: int = WAL_MAX_BYTES,
        segment_bytes: int | None = None,
    ):
        super().__init__(retention_seconds)
        self.path = Path(directory)
        self.path.mkdir(parents=True, exist_ok=True)
        self.blocks_dir = self.path / "blocks"
        self.blocks_dir.mkdir(exist_ok=True)
        self._lock_file = _lock(self.path / "lock")
        wal_options = {"segment_bytes": segment_bytes} if segment_bytes else {}
        self.wal = WriteAheadLog(self.path / "wal", **wal_options)
        self.block_range_ms = block_range_ms
        self.wal_max_bytes = wal_max_bytes
        self.blocks: list[BlockMeta] = []
        self._head_since: int | None = None  # ms of the first sample logged since the cut
        self._wal_bytes = 0
        self._write_failed = False
        self._compact_lock = threading.Lock()
        started = time.perf_counter()
        self._load(int(time.time() * 1000) if now_ms is None else now_ms)
        self._wal_bytes = sum(self.wal.path(n).stat().st_size for n in self.wal.segments())
        self.wal.open_segment()
        self._journaled = True
        stats = self.stats()
        logger.info(
            "sample store %s: %d series, %d samples from %d blocks and the log in %.2f s",
            self.path,
            stats["series"],
            stats["samples"],
            len(self.blocks),
            time.perf_counter() - started,
        )

    # -- writing ----------------------------------------------------------------------------------
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
        parts = []
        if new:
            parts.append(frame(SERIES, labels_encode([s.id for s in new], [s.labels for s in new])))
        name = b"" if source is None else source.encode()
        if source is not None:
            flags |= HAS_SOURCE
        payload = b"".join(
            (
                _SAMPLES.pack(t_ms, flags, len(name), len(refs), len(stale)),
                name,
                refs.tobytes(),
                values.tobytes(),
                stale.tobytes(),
            )
        )
        parts.append(frame(SAMPLES, payload))
        self._write(b"".join(parts))
        if self._head_since is None and (refs or stale):
            self._head_since = t_ms

    def _write(self, data: bytes) -> None:
        try:
            self.wal.write(data)
        except OSError:
            # A full or failing disk must not stop scraping: the samples stay in memory.
            if not self._write_failed:
                logger.exception("cannot write the sample store's log in %s", self.wal.dir)
            self._write_failed = True
            return
        if self._write_failed:
            logger.info("writing the sample store's log in %s again", self.wal.dir)
            self._write_failed = False
        self._wal_bytes += len(data)

    # -- compaction and retention -------------------------------------------------------------------
    def gc(self, now_ms: int) -> int:
        removed = super().gc(now_ms)
        with self._lock:
            due = (
                self._head_since is not None and now_ms - self._head_since >= self.block_range_ms
            ) or self._wal_bytes >= self.wal_max_bytes
        if due:
            self.compact()
        self._delete_expired(now_ms)
        return removed

    def compact(self) -> BlockMeta | None:
        """Write every sample logged so far into a block and drop the log segments it covers.

        The cut (new segment, snapshot of series and sources) happens under the store's lock,
        so the block holds exactly what the segments before the cut hold; the encoding and
        writing happen outside it, while scrapes go on."""
        with self._compact_lock:
            with self._lock:
                # Each series' arrays and the bounds to write, not copies: appends only add
                # past `hi`, and gc or a rebase replace the arrays rather than change them.
                todo = []
                for s in self._series.values():
                    lo = 0 if s.flushed_t is None else bisect_right(s.offsets, s.flushed_t - s.base)
                    hi = len(s.offsets)
                    if lo < hi:
                        todo.append((s, s.flushed_t, s.base, s.offsets, s.values, lo, hi))
                if not todo:
                    return None
                cut = self.wal.open_segment()
                self._wal_bytes = 0
                self._head_since = None
                self._write(self._snapshot())
                for s, _old, base, offsets, _values, _lo, hi in todo:
                    s.flushed_t = base + offsets[hi - 1]
            todo.sort(key=lambda item: item[0].id)
            try:
                meta = block_write(
                    self.blocks_dir,
                    wal_cut=cut,
                    refs=np.fromiter((item[0].id for item in todo), np.uint32, len(todo)),
                    labels=[item[0].labels for item in todo],
                    groups=_groups(todo),
                )
            except OSError:
                logger.exception("cannot write a block in %s; keeping the log", self.blocks_dir)
                with self._lock:
                    for s, old, *_ in todo:
                        s.flushed_t = old
                return None
            self.blocks.append(meta)
            self.wal.remove_before(cut)
            logger.info(
                "compacted %d samples of %d series into %s (%d bytes)",
                meta.samples,
                meta.series,
                meta.path.name,
                meta.path.stat().st_size,
            )
            return meta

    def _snapshot(self) -> bytes:
        """SERIES of every live series and MEMBERS of every source: what the log after a cut
        needs to stand on its own."""
        live = sorted(self._series.values(), key=lambda s: s.id)
        parts = [
            frame(
                SERIES,
                labels_encode([s.id for s in live], [s.labels for s in live]),
                compress_level=1,
            )
        ]
        for source, keys in self._source_series.items():
            refs = array("I", sorted(self._series[k].id for k in keys if k in self._series))
            name = source.encode()
            parts.append(
                frame(MEMBERS, _MEMBERS.pack(len(name), len(refs)) + name + refs.tobytes())
            )
        return b"".join(parts)

    def _delete_expired(self, now_ms: int) -> None:
        cutoff = now_ms - self.retention_ms
        for meta in [b for b in self.blocks if b.max_t < cutoff]:
            meta.path.unlink(missing_ok=True)
            self.blocks.remove(meta)
            logger.info("deleted block %s: past the retention", meta.path.name)
        for path in self.blocks_dir.glob("*.corrupt"):
            if path.stat().st_mtime * 1000 < cutoff:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._journaled = False
            self.wal.close()
        os.close(self._lock_file)

    # -- loading ------------------------------------------------------------------------------------
    def _load(self, now_ms: int) -> None:
        cutoff = now_ms - self.retention_ms
        loader = _Loader(cutoff)
        wal_floor = 0
        for tmp in self.blocks_dir.glob("*.tmp"):
            tmp.unlink()  # a block whose writing was interrupted; its log is still there
        for path in sorted(self.blocks_dir.glob(f"*{SUFFIX}")):
            try:
                block = block_read(path)
                wal_floor = max(wal_floor, block.meta.wal_cut)
                loader.highest = max(loader.highest, int(block.table.refs.max(initial=0)))
                if block.meta.max_t < cutoff:
                    path.unlink()
                    continue
                # Decode the next group in a second thread (zlib and numpy let go of the GIL)
                # while this one is added to the series.
                with ThreadPoolExecutor(1) as ahead:
                    groups = block.groups()
                    upcoming = ahead.submit(next, groups, None)
                    while (group := upcoming.result()) is not None:
                        upcoming = ahead.submit(next, groups, None)
                        loader.absorb(
                            lambda _ref, i, g=group, table=block.table: table.labels(g.first + i),
                            group.refs,
                            group.counts,
                            group.t,
                            group.v,
                            True,
                        )
            except (ValueError, KeyError, IndexError, OSError, struct.error, zlib.error) as exc:
                logger.warning("block %s cannot be read (%s); skipping it", path, exc)
                path.rename(path.with_suffix(".corrupt"))
                continue
            self.blocks.append(block.meta)
        self.wal.remove_before(wal_floor)
        self._replay(loader, wal_floor)
        self._next_id = loader.highest
        for series in loader.by_key.values():
            if len(series.offsets):
                self._series[series.labels] = series
                for name, val in series.labels:
                    self._postings.setdefault(name, {}).setdefault(val, set()).add(series.labels)
        _release_freed_memory()

    def _replay(self, loader: _Loader, first: int) -> None:
        """Read the log from segment ``first``, a chunk of samples at a time."""
        tables: dict[int, tuple[LabelTable, int]] = {}
        chunk = _Chunk()
        members: dict[str, np.ndarray] = {}
        for segment, offset, kind, payload in self.wal.records({SERIES, SAMPLES, MEMBERS}, first):
            try:
                if kind == SERIES:
                    table = LabelTable(payload)
                    tables.update((ref, (table, i)) for i, ref in enumerate(table.refs.tolist()))
                elif kind == MEMBERS:
                    size, n = _MEMBERS.unpack_from(payload)
                    at = _MEMBERS.size
                    name = payload[at : at + size].decode()
                    members[name] = _array(payload, at + size, np.uint32, n)
                else:
                    t, flags, size, n, m = _SAMPLES.unpack_from(payload)
                    at = _SAMPLES.size + size
                    name = payload[_SAMPLES.size : at].decode()
                    got = _array(payload, at, np.uint32, n)
                    if at + 12 * n + 4 * m != len(payload):
                        raise ValueError("record length does not match its counts")
                    chunk.add(t, got, _array(payload, at + 4 * n, np.float64, n))
                    chunk.add(t, _array(payload, at + 12 * n, np.uint32, m), None)
                    if self._head_since is None and n + m:
                        self._head_since = t
                    if flags & HAS_SOURCE and flags & self.SCRAPE:
                        members[name] = got
                    elif flags & HAS_SOURCE and flags & self.SOURCE_GONE:
                        members.pop(name, None)
                if chunk.size >= _CHUNK_SAMPLES:
                    chunk.flush(loader, tables)
            except (ValueError, struct.error, UnicodeDecodeError) as exc:
                self.wal.cut_off(segment, offset, f"undecodable record ({exc})")
                break
        chunk.flush(loader, tables)
        if chunk.unknown:
            logger.warning(
                "write-ahead log: %d series without a series record; their samples are lost",
                len(chunk.unknown),
            )
        loader.highest = max(loader.highest, max(tables, default=0))
        for name, member_refs in members.items():
            self._source_series[name] = {
                loader.by_ref[ref].labels for ref in member_refs.tolist() if ref in loader.by_ref
            }


_CHUNK_SAMPLES = 1 << 20
_STALE_BITS = np.uint64(STALE_NAN_BITS)


class _Chunk:
    """Log samples gathered until there are enough to add them to the series in one go."""

    def __init__(self) -> None:
        self.unknown: set[int] = set()
        self._clear()

    def _clear(self) -> None:
        # Writes grouped by their exact list of refs (a steady target logs the same list at
        # every scrape): each group's values, and the times of its writes, in logged order.
        self.groups: dict[bytes, tuple[np.ndarray, list[np.ndarray], list[int]]] = {}
        self.size = 0

    def add(self, t: int, refs: np.ndarray, values: np.ndarray | None) -> None:
        """Samples at ``t``; ``values`` None: staleness markers."""
        if not len(refs):
            return
        if values is None:
            values = np.full(len(refs), _STALE_BITS).view(np.float64)
        key = refs.tobytes()
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = (refs, [], [])
        group[1].append(values)
        group[2].append(t)
        self.size += len(refs)

    def flush(self, loader: _Loader, tables: dict[int, tuple[LabelTable, int]]) -> None:
        if not self.size:
            return
        groups = list(self.groups.values())
        self._clear()  # let the records' bytes go

        def labels_of(ref: int, _i: int) -> Labels | None:
            found = tables.get(ref)
            if found is None:
                self.unknown.add(ref)
                return None
            return found[0].labels(found[1])

        every = np.concatenate([refs for refs, _, _ in groups])
        if len(np.unique(every)) == len(every):
            # No series in two groups: each group is a matrix (writes x series), and its
            # transpose has each series' samples in logged order. No sorting.
            for refs, values, times in groups:
                v = np.ascontiguousarray(np.vstack(values).T).ravel()
                t = np.tile(np.asarray(times, np.int64), len(refs))
                counts = np.full(len(refs), len(times), np.int64)
                loader.absorb(labels_of, refs, counts, t, v, False)
            return
        # Series in several groups (one appeared or went stale): sort by series, then time
        # (within a series, the logged order: the store only takes increasing times).
        r = np.concatenate([np.tile(refs, len(times)) for refs, _, times in groups])
        t = np.concatenate(
            [np.repeat(np.asarray(times, np.int64), len(refs)) for refs, _, times in groups]
        )
        v = np.concatenate([np.concatenate(values) for _, values, _ in groups])
        order = np.lexsort((t, r))
        r, t, v = r[order], t[order], v[order]
        starts = np.flatnonzero(np.diff(r, prepend=np.int64(-1)))
        counts = np.diff(starts, append=len(r))
        loader.absorb(labels_of, r[starts], counts, t, v, False)


def _release_freed_memory() -> None:
    """Give the loading's freed scratch memory back to the system (glibc keeps it otherwise)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _Loader:
    """Builds the series of a store being opened from columns of blocks and the log."""

    def __init__(self, cutoff: int):
        self.cutoff = cutoff
        self.by_ref: dict[int, _Series] = {}
        self.by_key: dict[Labels, _Series] = {}
        self.highest = 0

    def absorb(
        self,
        labels_of: Callable[[int, int], Labels | None],
        refs: np.ndarray,
        counts: np.ndarray,
        t: np.ndarray,
        v: np.ndarray,
        from_block: bool,
    ) -> None:
        """Append columns of several series (each one's samples contiguous, ``counts`` long)
        to the series they belong to: a few numpy passes over the columns (offsets, NaN counts,
        counter drops), then two buffer copies per series. ``labels_of(ref, i)`` gives the
        label set of ``refs[i]`` (None when unknown)."""
        counts = counts.astype(np.int64)
        if len(t) and t.min() < self.cutoff:
            t, v, counts = _only(t >= self.cutoff, t, v, counts)
        ends = np.cumsum(counts)
        starts = ends - counts
        targets = self._targets(labels_of, refs.tolist(), counts.tolist(), t, starts)
        bases = np.fromiter((s.base if s else 0 for s in targets), np.int64, len(targets))
        offsets = t - np.repeat(bases, counts)
        if not len(v):
            return
        nonempty = counts > 0
        # A series spanning more than 24 days (a long retention): 64-bit offsets, as appends
        # widen them (monitoring.tsdb.store).
        outside = (offsets > _OFFSET_MAX) | (offsets < -_OFFSET_MAX)
        wide = np.zeros(len(counts), bool)
        if outside.any():
            wide[nonempty] = np.logical_or.reduceat(outside, starts[nonempty])
        # Per series, at once: its NaNs, and its last drop in value (a counter reset).
        nans = np.zeros(len(counts), np.int64)
        nans[nonempty] = np.add.reduceat(np.isnan(v), starts[nonempty])
        drop = np.zeros(len(v), bool)
        np.less(v[1:], v[:-1], out=drop[1:])
        drop[starts[nonempty]] = False  # that compared with the series before
        drops = np.flatnonzero(drop)
        last_drop = np.full(len(counts), -1, np.int64)
        if len(drops):  # each series' last drop: the last one before its end, if in it
            before = np.searchsorted(drops, ends)
            found = drops[(before - 1).clip(0)]
            hit = (before > 0) & (found >= starts)
            last_drop[hit] = offsets[found[hit]]
        first = starts.clip(max=len(v) - 1)
        off_bytes = memoryview(offsets.astype(np.int32)).cast("B")  # wrapped where wide
        wide_bytes = memoryview(np.ascontiguousarray(offsets, np.int64)).cast("B")  # no copy
        val_bytes = memoryview(np.ascontiguousarray(v, np.float64)).cast("B")
        rows = zip(
            targets,
            starts.tolist(),
            ends.tolist(),
            offsets[first].tolist(),
            v[first].tolist(),
            offsets[(ends - 1).clip(0)].tolist(),
            nans.tolist(),
            last_drop.tolist(),
            wide.tolist(),
            strict=True,
        )
        for series, a, end, first_off, first_v, last_off, n_nan, drop_off, is_wide in rows:
            if series is None or a == end:
                continue
            if series.offsets:
                if first_off <= series.offsets[-1]:  # never back in time: only after damage
                    continue  # (two pieces overlapping)
                if first_v < series.values[-1]:
                    series.last_drop = series.base + first_off
            if is_wide and series.offsets.typecode == "i":
                series.offsets = array("q", series.offsets)
            if series.offsets.typecode == "q":
                series.offsets.frombytes(wide_bytes[8 * a : 8 * end])
            else:
                series.offsets.frombytes(off_bytes[4 * a : 4 * end])
            series.values.frombytes(val_bytes[8 * a : 8 * end])
            series.nans += n_nan
            if drop_off >= 0:
                series.last_drop = series.base + drop_off
            if from_block:
                series.flushed_t = series.base + last_off

    def _targets(
        self,
        labels_of: Callable[[int, int], Labels | None],
        refs: list[int],
        counts: list[int],
        t: np.ndarray,
        starts: np.ndarray,
    ) -> list[_Series | None]:
        """The series each ref's samples go to, made on first sight (None: no label set)."""
        by_ref, by_key = self.by_ref, self.by_key
        targets: list[_Series | None] = []
        for i, (ref, count) in enumerate(zip(refs, counts, strict=True)):
            series = by_ref.get(ref)
            if series is None and count:
                key = labels_of(ref, i)
                if key is not None:
                    series = by_key.get(key)
                    if series is None:
                        series = by_key[key] = _Series(key, int(t[starts[i]]), ref)
                    else:  # the same labels under a newer ref: a series dropped and seen again
                        series.id = max(series.id, ref)
                    by_ref[ref] = series
            targets.append(series)
        return targets


GROUP_SAMPLES = 1 << 20  # samples per block group: what compaction and loading hold at once


def _groups(todo: list) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Block groups of consecutive series, about GROUP_SAMPLES samples each, copied from the
    series' arrays one group at a time (slicing an array copies it; a numpy view of a live
    array would stop appends to it)."""
    start = 0
    while start < len(todo):
        end, size = start, 0
        while end < len(todo) and (size < GROUP_SAMPLES or end == start):
            size += todo[end][6] - todo[end][5]
            end += 1
        batch = todo[start:end]
        counts = np.fromiter((hi - lo for *_, lo, hi in batch), np.int64, len(batch))
        t = np.concatenate(
            [
                base + np.frombuffer(offsets[lo:hi], np.dtype(offsets.typecode)).astype(np.int64)
                for _s, _old, base, offsets, _values, lo, hi in batch
            ]
        )
        v = np.concatenate(
            [np.frombuffer(values[lo:hi], np.float64) for *_, values, lo, hi in batch]
        )
        yield counts, t, v
        start = end


def _only(keep: np.ndarray, a: np.ndarray, b: np.ndarray, counts: np.ndarray):
    """Columns ``a`` and ``b`` (series after series, ``counts`` long) without the samples
    ``keep`` leaves out, and the new counts."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return a[keep], b[keep], np.bincount(owner[keep], minlength=len(counts)).astype(np.int64)


def _array(payload: bytes, at: int, dtype, count: int) -> np.ndarray:
    size = np.dtype(dtype).itemsize * count
    if at + size > len(payload):
        raise ValueError("record shorter than its counts")
    return np.frombuffer(payload, dtype, count, at)


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(f"{path.parent} is in use by another process") from None
    return fd
