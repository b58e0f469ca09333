"""Byte formats shared by the write-ahead log and the blocks, all vectorised with numpy.

- Frames: ``type (u8) | length (u32) | crc32 of the payload (u32) | payload``. A reader that
  meets a short frame, a bad checksum or an unknown type knows the rest cannot be trusted
  (``FrameError``); a set high bit in the type means the payload is zlib-compressed.
- Label sets: a symbol table (every distinct string once) plus, per series, its ref, its
  number of pairs and the pairs as symbol numbers.
- Columns of many series at once, each series' samples contiguous (``counts`` says how many):
  timestamps as delta-of-delta (how much each interval differs from the one before: 0 for a
  steady scrape) in the narrowest signed integer that holds them, the jumps where one series
  ends and the next begins kept apart; values as the XOR of each float's bits with the
  previous one's (0 when unchanged, few set bits when a counter moves). Both are
  byte-shuffled (all first bytes, then all second bytes, ...) so zlib sees long runs of
  zeros. Decoding is two prefix sums, or one prefix XOR, over the whole column: never a
  Python loop per sample, nor per series.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

import numpy as np

from monitoring.tsdb.store import Labels

HEADER = struct.Struct("<BII")
COMPRESSED = 0x80
ZLIB_LEVEL = 6


class FrameError(ValueError):
    """The bytes from this offset on are not a whole, intact frame."""

    def __init__(self, offset: int, problem: str):
        super().__init__(f"{problem} at byte {offset}")
        self.offset = offset
        self.problem = problem


def frame(kind: int, payload: bytes, *, compress_level: int | None = None) -> bytes:
    """One frame; with ``compress_level`` the payload is deflated (and flagged so)."""
    if compress_level is not None:
        payload = zlib.compress(payload, compress_level)
        kind |= COMPRESSED
    return HEADER.pack(kind, len(payload), zlib.crc32(payload)) + payload


def frames(
    data: bytes | memoryview, kinds: set[int], start: int = 0
) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, kind, payload)`` for each frame of ``data`` from ``start``; FrameError at the first
    one that is torn, fails its checksum or has an unknown kind."""
    view = memoryview(data)
    offset, end = start, len(view)
    while offset < end:
        if end - offset < HEADER.size:
            raise FrameError(offset, "torn frame header")
        kind, length, crc = HEADER.unpack_from(view, offset)
        body = offset + HEADER.size
        if kind & ~COMPRESSED not in kinds:
            raise FrameError(offset, f"unknown record type {kind}")
        if body + length > end:
            raise FrameError(offset, f"torn record ({end - body} of {length} bytes)")
        payload = view[body : body + length]
        if zlib.crc32(payload) != crc:
            raise FrameError(offset, "checksum mismatch")
        try:
            data_out = zlib.decompress(payload) if kind & COMPRESSED else bytes(payload)
        except zlib.error as exc:
            raise FrameError(offset, f"undecodable record ({exc})") from None
        yield offset, kind & ~COMPRESSED, data_out
        offset = body + length


# -- label sets --------------------------------------------------------------------------------
_COUNTS = struct.Struct("<III")


def labels_encode(refs: Sequence[int], label_sets: Sequence[Labels]) -> bytes:
    symbols: dict[str, int] = {}
    pairs: list[int] = []
    sizes: list[int] = []
    for labels in label_sets:
        sizes.append(len(labels))
        for name, value in labels:
            pairs.append(symbols.setdefault(name, len(symbols)))
            pairs.append(symbols.setdefault(value, len(symbols)))
    encoded = [s.encode() for s in symbols]
    return b"".join(
        [
            _COUNTS.pack(len(encoded), len(refs), len(pairs)),
            np.fromiter((len(b) for b in encoded), np.uint32, len(encoded)).tobytes(),
            np.asarray(refs, np.uint32).tobytes(),
            np.asarray(sizes, np.uint16).tobytes(),
            np.asarray(pairs, np.uint32).tobytes(),
            b"".join(encoded),
        ]
    )


class LabelTable:
    """A decoded ``labels_encode``: ``refs`` at once, each label set only when asked for (a
    store reopening mostly meets series it already knows)."""

    def __init__(self, data: bytes):
        n_symbols, n_series, n_pairs = _COUNTS.unpack_from(data, 0)
        at = _COUNTS.size
        lengths, at = _take(data, at, np.uint32, n_symbols)
        self.refs, at = _take(data, at, np.uint32, n_series)
        sizes, at = _take(data, at, np.uint16, n_series)
        pairs, at = _take(data, at, np.uint32, n_pairs)
        text = data[at:]
        ends = np.cumsum(lengths, dtype=np.int64).tolist()
        if (ends[-1] if ends else 0) != len(text) or int(sizes.sum()) * 2 != n_pairs:
            raise ValueError("label table sizes do not add up")
        if n_pairs and int(pairs.max()) >= n_symbols:
            raise ValueError("label table refers to a missing symbol")
        self._symbols = _split(text, ends)
        self._pairs = pairs
        self._ends = np.cumsum(sizes.astype(np.int64) * 2).tolist()

    def __len__(self) -> int:
        return len(self._ends)

    def labels(self, i: int) -> Labels:
        end = self._ends[i]
        start = self._ends[i - 1] if i else 0
        flat = [self._symbols[k] for k in self._pairs[start:end].tolist()]
        return tuple(zip(flat[::2], flat[1::2], strict=True))


def _split(text: bytes, ends: list[int]) -> list[str]:
    out, start = [], 0
    for end in ends:
        out.append(text[start:end].decode())
        start = end
    return out


def _take(data: bytes, at: int, dtype, count: int) -> tuple[np.ndarray, int]:
    size = np.dtype(dtype).itemsize * count
    if at + size > len(data):
        raise ValueError("record shorter than its counts")
    return np.frombuffer(data, dtype, count, at), at + size


# -- columns -----------------------------------------------------------------------------------
def starts_of(counts: np.ndarray) -> np.ndarray:
    """Index of each series' first sample in a column (series with no samples excluded)."""
    return (np.cumsum(counts, dtype=np.int64) - counts)[counts > 0]


def _shuffled(words: np.ndarray) -> bytes:
    """Byte-shuffle an unsigned integer column and deflate it."""
    as_bytes = words.view(np.uint8).reshape(len(words), words.itemsize)
    return zlib.compress(np.ascontiguousarray(as_bytes.T).tobytes(), ZLIB_LEVEL)


def _unshuffled(data: bytes, dtype, count: int) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    raw = np.frombuffer(zlib.decompress(data), np.uint8)
    if len(raw) != width * count:
        raise ValueError(f"column holds {len(raw)} bytes, expected {width * count}")
    return np.ascontiguousarray(raw.reshape(width, count).T).view(dtype).ravel()


_WIDTHS = (np.int8, np.int16, np.int32, np.int64)


def _boundaries(counts: np.ndarray) -> np.ndarray:
    """Each series' first two positions: where a column-wide delta-of-delta jumps."""
    starts = starts_of(counts)
    at = np.unique(np.concatenate([starts, starts + 1]))
    return at[at < int(counts.sum())]


def timestamps_encode(t: np.ndarray, counts: np.ndarray) -> tuple[int, bytes, bytes]:
    """``(width in bytes, column, jumps)`` for int64 timestamps, every series' after the other.

    The column is the delta-of-delta of the whole column, so decoding is two prefix sums; the
    values at each series' first two positions (where time jumps back to the next series'
    start) are kept apart, as ``jumps``, so the column stays narrow."""
    delta = np.diff(t, prepend=0)
    dod = np.diff(delta, prepend=0)
    at = _boundaries(counts)
    jumps = dod[at].astype(np.int64).tobytes()
    dod[at] = 0
    low, high = (int(dod.min()), int(dod.max())) if len(dod) else (0, 0)
    dtype = next(w for w in _WIDTHS if np.iinfo(w).min <= low and high <= np.iinfo(w).max)
    return np.dtype(dtype).itemsize, _shuffled(dod.astype(dtype)), zlib.compress(jumps)


def timestamps_decode(data: bytes, width: int, jumps: bytes, counts: np.ndarray) -> np.ndarray:
    """The int64 timestamps back from ``timestamps_encode``."""
    n = int(counts.sum())
    dod = _unshuffled(data, {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[width], n)
    dod = dod.astype(np.int64)
    at = _boundaries(counts)
    jump = np.frombuffer(zlib.decompress(jumps), np.int64)
    if len(jump) != len(at):
        raise ValueError("timestamp jumps do not match the series counts")
    dod[at] = jump
    return np.cumsum(np.cumsum(dod, out=dod), out=dod)


def values_encode(v: np.ndarray) -> bytes:
    """Each float's bits XOR the previous float's, across the whole column."""
    bits = v.view(np.uint64)
    xor = bits.copy()
    xor[1:] ^= bits[:-1]
    return _shuffled(xor)


def values_decode(data: bytes, n: int) -> np.ndarray:
    """float64 values, bit for bit (NaN payloads, so staleness markers, included)."""
    xor = _unshuffled(data, np.uint64, n)
    return np.bitwise_xor.accumulate(xor, out=xor).view(np.float64)
