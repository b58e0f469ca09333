"""Compacted blocks: one immutable file per compaction, columnar and compressed.

A block holds every sample the store accepted between two compaction cuts, series by series
(ordered by series ref), in groups of consecutive series (about a million samples each) so
that a writer and a reader hold one group at a time. The file is ``MAGIC`` then frames
(``encoding.frame``):

    LABELS      the series' refs and label sets (``encoding.labels_encode``), deflated
    then per group:
    COUNTS      how many series the group has (u32), then each one's sample count (u32)
    TIMESTAMPS  u8 width, then the delta-of-delta column (``encoding.timestamps_encode``)
    JUMPS       the timestamps' values at each series' first two samples, deflated
    VALUES      XOR column (``encoding.values_encode``)
    and last:
    META        JSON: version, min_t, max_t (ms), wal_cut, series, samples
    END         empty: the file is whole

``wal_cut`` is the first write-ahead-log segment *not* in the block: segments before it are
redundant once the block exists. A block is written to a temporary name, synced and renamed,
so a crash leaves either the whole block or none.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitoring.tsdb.encoding import (
    FrameError,
    LabelTable,
    frame,
    frames,
    labels_encode,
    timestamps_decode,
    timestamps_encode,
    values_decode,
    values_encode,
)
from monitoring.tsdb.store import Labels

__all__ = ["Block", "BlockMeta", "Group", "block_read", "block_write"]

MAGIC = b"PPBLOCK1"
META, LABELS, COUNTS, TIMESTAMPS, JUMPS, VALUES, END = range(1, 8)
SUFFIX = ".block"


@dataclass(frozen=True)
class BlockMeta:
    path: Path
    min_t: int
    max_t: int
    wal_cut: int
    series: int
    samples: int


@dataclass
class Block:
    """A block read from disk: its label table at once, its samples group by group."""

    meta: BlockMeta
    table: LabelTable
    _groups: list[tuple[bytes, bytes, bytes, bytes]]

    def groups(self) -> Iterator[Group]:
        """Each group decoded; ValueError when one does not hold what the index says."""
        first = 0
        for counts_data, ts_data, jumps, values in self._groups:
            (n,) = struct.unpack_from("<I", counts_data)
            if len(counts_data) != 4 + 4 * n or first + n > len(self.table):
                raise ValueError("group index does not match the series")
            counts = np.frombuffer(counts_data, np.uint32, n, 4).astype(np.int64)
            total = int(counts.sum())
            if not counts.all():
                raise ValueError("a series without samples")
            t = timestamps_decode(ts_data[1:], ts_data[0], jumps, counts)
            v = values_decode(values, total)
            yield Group(self.table.refs[first : first + n], first, counts, t, v)
            first += n


@dataclass
class Group:
    refs: np.ndarray  # uint32, ascending
    first: int  # index of refs[0] in the block's label table
    counts: np.ndarray  # int64 samples per series
    t: np.ndarray  # int64, every series' samples one after the other
    v: np.ndarray  # float64


def block_write(
    directory: Path,
    *,
    wal_cut: int,
    refs: np.ndarray,
    labels: list[Labels],
    groups: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> BlockMeta:
    """Write a block of the series ``refs``/``labels`` (ascending refs) from ``groups`` of
    ``(counts, t, v)`` columns, produced one at a time so only one is held in memory."""
    meta = {"version": 1, "min_t": None, "max_t": None, "wal_cut": wal_cut}
    series = samples = 0
    path = Path(directory) / f"{wal_cut:08d}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(frame(LABELS, labels_encode(refs.tolist(), labels), compress_level=6))
        for counts, t, v in groups:
            counts = counts.astype(np.int64)
            width, ts_data, jumps = timestamps_encode(t, counts)
            f.write(
                frame(COUNTS, struct.pack("<I", len(counts)) + counts.astype(np.uint32).tobytes())
            )
            f.write(frame(TIMESTAMPS, bytes([width]) + ts_data))
            f.write(frame(JUMPS, jumps))
            f.write(frame(VALUES, values_encode(v)))
            low, high = int(t.min()), int(t.max())
            meta["min_t"] = low if meta["min_t"] is None else min(meta["min_t"], low)
            meta["max_t"] = high if meta["max_t"] is None else max(meta["max_t"], high)
            series += len(counts)
            samples += len(t)
        if series != len(refs):
            raise ValueError(f"groups hold {series} series, the block {len(refs)}")
        meta.update(series=series, samples=samples)
        f.write(frame(META, json.dumps(meta).encode()))
        f.write(frame(END, b""))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return _meta(path, meta)


def _meta(path: Path, meta: dict) -> BlockMeta:
    return BlockMeta(
        path, meta["min_t"], meta["max_t"], meta["wal_cut"], meta["series"], meta["samples"]
    )


def block_read(path: Path) -> Block:
    """The block's index and compressed groups; ValueError (with what is wrong) for a torn or
    damaged file (a group that does not decode raises when ``groups()`` reaches it)."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError("not a block file (bad magic)")
    meta_json = labels = None
    groups: list[tuple[bytes, bytes, bytes, bytes]] = []
    pending: list[bytes] = []
    complete = False
    try:
        for _offset, kind, payload in frames(data, set(range(1, 8)), len(MAGIC)):
            if kind == META:
                meta_json = json.loads(payload)
            elif kind == LABELS:
                labels = LabelTable(payload)
            elif kind == END:
                complete = True
            else:
                if kind != COUNTS + len(pending):
                    raise ValueError(f"group frames out of order (type {kind})")
                pending.append(payload)
                if len(pending) == 4:
                    groups.append(tuple(pending))
                    pending = []
    except FrameError as exc:
        raise ValueError(str(exc)) from None
    if not complete or meta_json is None or labels is None or pending:
        raise ValueError("truncated (no end marker)")
    meta = _meta(Path(path), meta_json)
    if len(labels) != meta.series:
        raise ValueError("label table does not match the series count")
    return Block(meta, labels, groups)
