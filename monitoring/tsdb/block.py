"""Compacted blocks: one immutable file per compaction, columnar and compressed.

A block holds every sample the store accepted between two compaction cuts, series by series
(ordered by series ref), in groups of consecutive series of about ``GROUP_SAMPLES`` samples so
that a reader decodes (and holds) one group at a time. The file is ``MAGIC`` then frames
(``encoding.frame``):

    META        JSON: version, min_t, max_t (ms), wal_cut, series, samples
    LABELS      the series' refs and label sets (``encoding.labels_encode``), deflated
    then per group:
    COUNTS      how many series the group has (u32), then each one's sample count (u32)
    TIMESTAMPS  u8 width, then the delta-of-delta column (``encoding.timestamps_encode``)
    JUMPS       the timestamps' values at each series' first two samples, deflated
    VALUES      XOR column (``encoding.values_encode``)
    and last:
    END         empty: the file is whole

``wal_cut`` is the first write-ahead-log segment *not* in the block: segments before it are
redundant once the block exists. A block is written to a temporary name, synced and renamed,
so a crash leaves either the whole block or none.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
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
GROUP_SAMPLES = 1 << 20
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
    counts: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
) -> BlockMeta:
    counts = counts.astype(np.int64)
    meta = {
        "version": 1,
        "min_t": int(t.min()),
        "max_t": int(t.max()),
        "wal_cut": wal_cut,
        "series": len(refs),
        "samples": len(t),
    }
    parts = [
        MAGIC,
        frame(META, json.dumps(meta).encode()),
        frame(LABELS, labels_encode(refs.tolist(), labels), compress_level=6),
    ]
    ends = np.cumsum(counts)
    first = 0
    while first < len(counts):
        start = int(ends[first - 1]) if first else 0
        # Whole series, at least one, up to about GROUP_SAMPLES samples.
        last = max(first + 1, int(np.searchsorted(ends, start + GROUP_SAMPLES, side="right")))
        end = int(ends[last - 1])
        group = counts[first:last]
        width, ts_data, jumps = timestamps_encode(t[start:end], group)
        parts += [
            frame(COUNTS, struct.pack("<I", len(group)) + group.astype(np.uint32).tobytes()),
            frame(TIMESTAMPS, bytes([width]) + ts_data),
            frame(JUMPS, jumps),
            frame(VALUES, values_encode(v[start:end])),
        ]
        first = last
    parts.append(frame(END, b""))
    path = Path(directory) / f"{wal_cut:08d}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for part in parts:
            f.write(part)
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
