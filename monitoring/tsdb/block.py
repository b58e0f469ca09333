"""Compacted blocks: one immutable file per compaction, columnar and compressed.

A block holds every sample the store accepted between two compaction cuts, series by series
(ordered by series ref). The file is ``MAGIC`` then frames (``encoding.frame``):

    META        JSON: version, min_t, max_t (ms), wal_cut, series, samples, ts_width
    LABELS      the series' refs and label sets (``encoding.labels_encode``), deflated
    INDEX       per series: sample count (u32), deflated
    TIMESTAMPS  delta-of-delta column (``encoding.timestamps_encode``)
    JUMPS       the timestamps' values at each series' first two samples, deflated
    VALUES      XOR column (``encoding.values_encode``)
    END         empty: the file is whole

``wal_cut`` is the first write-ahead-log segment *not* in the block: segments before it are
redundant once the block exists. A block is written to a temporary name, synced and renamed,
so a crash leaves either the whole block or none.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitoring.tsdb.encoding import (
    FrameError,
    frame,
    frames,
    labels_decode,
    labels_encode,
    timestamps_decode,
    timestamps_encode,
    values_decode,
    values_encode,
)
from monitoring.tsdb.store import Labels

__all__ = ["Block", "BlockMeta", "block_read", "block_write"]

MAGIC = b"PPBLOCK1"
META, LABELS, INDEX, TIMESTAMPS, VALUES, END, JUMPS = range(1, 8)
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
    meta: BlockMeta
    refs: np.ndarray  # uint32, ascending
    labels: list[Labels]
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
    width, ts_data, jumps = timestamps_encode(t, counts)
    meta = {
        "version": 1,
        "min_t": int(t.min()),
        "max_t": int(t.max()),
        "wal_cut": wal_cut,
        "series": len(refs),
        "samples": len(t),
        "ts_width": width,
    }
    index = counts.astype(np.uint32).tobytes()
    parts = [
        MAGIC,
        frame(META, json.dumps(meta).encode()),
        frame(LABELS, labels_encode(refs.tolist(), labels), compress_level=6),
        frame(INDEX, index, compress_level=6),
        frame(TIMESTAMPS, ts_data),
        frame(JUMPS, jumps),
        frame(VALUES, values_encode(v)),
        frame(END, b""),
    ]
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
    """The whole block; ValueError (with what is wrong) for a torn or damaged file."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError("not a block file (bad magic)")
    parts: dict[int, bytes] = {}
    try:
        for _offset, kind, payload in frames(data, set(range(1, 8)), len(MAGIC)):
            parts[kind] = payload
    except FrameError as exc:
        raise ValueError(str(exc)) from None
    if END not in parts:
        raise ValueError("truncated (no end marker)")
    meta_json = json.loads(parts[META])
    meta = _meta(Path(path), meta_json)
    refs, labels = labels_decode(parts[LABELS])
    n = meta.series
    index = parts[INDEX]
    if len(refs) != n or len(index) != 4 * n:
        raise ValueError("index does not match the series count")
    counts = np.frombuffer(index, np.uint32, n).astype(np.int64)
    if int(counts.sum()) != meta.samples or not counts.all():
        raise ValueError("index does not match the sample count")
    t = timestamps_decode(parts[TIMESTAMPS], meta_json["ts_width"], parts[JUMPS], counts)
    v = values_decode(parts[VALUES], meta.samples)
    return Block(meta, refs, labels, counts, t, v)
