"""Byte formats shared by the write-ahead log and the blocks, all vectorised with numpy.

- Frames: ``type (u8) | length (u32) | crc32 of the payload (u32) | payload``. A reader that
  meets a short frame, a bad checksum or an unknown type knows the rest cannot be trusted
  (``FrameError``); a set high bit in the type means the payload is zlib-compressed.
- Label sets: a symbol table (every distinct string once) plus, per series, its ref, its
  number of pairs and the pairs as symbol numbers.
- Columns of many series at once, each series' samples contiguous (``counts`` says how many):
  timestamps as delta-of-delta (the first delta, then how much each interval differs from the
  one before: 0 for a steady scrape), zig-zagged into the narrowest unsigned integer that holds
  them; values as the XOR of each float's bits with the previous one's (0 when unchanged, few
  set bits when a counter moves). Both are byte-shuffled (all first bytes, then all second
  bytes, ...) so zlib sees long runs of zeros. Decoding is a few numpy passes over the whole
  column (prefix sums, prefix XOR), never a Python loop per sample.
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


def labels_decode(data: bytes) -> tuple[np.ndarray, list[Labels]]:
    """``(refs, label sets)``; ValueError when the bytes do not hold what they claim."""
    n_symbols, n_series, n_pairs = _COUNTS.unpack_from(data, 0)
    at = _COUNTS.size
    lengths, at = _take(data, at, np.uint32, n_symbols)
    refs, at = _take(data, at, np.uint32, n_series)
    sizes, at = _take(data, at, np.uint16, n_series)
    pairs, at = _take(data, at, np.uint32, n_pairs)
    text = data[at:]
    ends = np.cumsum(lengths, dtype=np.int64).tolist()
    if (ends[-1] if ends else 0) != len(text) or int(sizes.sum()) * 2 != n_pairs:
        raise ValueError("label table sizes do not add up")
    if n_pairs and int(pairs.max()) >= n_symbols:
        raise ValueError("label table refers to a missing symbol")
    symbols = _split(text, ends)
    flat = [symbols[i] for i in pairs.tolist()]
    out: list[Labels] = []
    at = 0
    for size in sizes.tolist():
        end = at + 2 * size
        out.append(tuple(zip(flat[at:end:2], flat[at + 1 : end : 2], strict=True)))
        at = end
    return refs, out


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


_WIDTHS = (np.uint8, np.uint16, np.uint32, np.uint64)


def timestamps_encode(t: np.ndarray, counts: np.ndarray) -> tuple[int, bytes]:
    """``(width in bytes, data)`` for the int64 timestamps ``t`` (first ones kept elsewhere)."""
    if not len(t):
        return 1, _shuffled(np.zeros(0, np.uint8))
    starts = starts_of(counts)
    delta = np.diff(t, prepend=t[:1])
    delta[starts] = 0
    dod = np.diff(delta, prepend=0)
    dod[starts] = 0
    zigzag = ((dod << 1) ^ (dod >> 63)).view(np.uint64)
    top = int(zigzag.max())
    dtype = next(w for w in _WIDTHS if top <= np.iinfo(w).max)
    return np.dtype(dtype).itemsize, _shuffled(zigzag.astype(dtype))


def timestamps_decode(data: bytes, width: int, first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The int64 timestamps back from ``timestamps_encode`` and each series' first one."""
    n = int(counts.sum())
    zigzag = _unshuffled(data, {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[width], n)
    zigzag = zigzag.astype(np.uint64)
    dod = ((zigzag >> np.uint64(1)) ^ (np.uint64(0) - (zigzag & np.uint64(1)))).view(np.int64)
    return _segmented_cumsum(_segmented_cumsum(dod, counts), counts) + np.repeat(first, counts)


def _segmented_cumsum(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Prefix sums restarting at every series; each series' first element must be 0."""
    total = np.cumsum(x)
    return total - np.repeat(total[starts_of(counts)], counts[counts > 0])


def values_encode(v: np.ndarray, counts: np.ndarray) -> bytes:
    bits = v.view(np.uint64)
    xor = bits.copy()
    xor[1:] ^= bits[:-1]
    starts = starts_of(counts)
    xor[starts] = bits[starts]
    return _shuffled(xor)


def values_decode(data: bytes, counts: np.ndarray) -> np.ndarray:
    """float64 values, bit for bit (NaN payloads, so staleness markers, included)."""
    xor = _unshuffled(data, np.uint64, int(counts.sum()))
    if not len(xor):
        return xor.view(np.float64)
    prefix = np.bitwise_xor.accumulate(xor)
    starts = starts_of(counts)
    before = prefix[starts] ^ xor[starts]  # the prefix just before each series began
    return (prefix ^ np.repeat(before, counts[counts > 0])).view(np.float64)
