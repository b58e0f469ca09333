"""Per-key request counts over a sliding minute, shared by every process on the host.

Why our own and not a library: django-ratelimit and `limits` count in a cache or Redis with a
round trip per request (tens of µs on localhost, more than django-prometheus's whole overhead,
and Redis being down would decide every request), and their in-memory stores are per process
(four gunicorn workers would allow four times the limit). Here the count lives in a small
memory-mapped file (SECURITY_COUNTER_FILE) that all workers of a host map: exact across them,
a few µs per request (a lock and a 24-byte slot), no network. With Redis, the middleware adds
the other hosts' counts (security/redis_share.py: one round trip per 16 requests or second per
address and process, not one per request).

The window is the sliding approximation: the previous fixed window's count weighted by how much
of it still overlaps the last `period` seconds, plus the current window's count. A burst
straddling a window boundary is still counted (a plain fixed window would let twice the limit
through there).

Slots: (key hash u64, window i64, count u32, previous count u32), open addressing over 8 probes;
a slot two windows old is free. When all 8 probes hold live keys (far more keys a minute than
slots), the first is evicted: that key starts again at 0, which errs on letting through.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
from pathlib import Path

SLOT = struct.Struct("<QqII")
PROBES = 8
unpack_from, pack_into = SLOT.unpack_from, SLOT.pack_into
flock, LOCK_EX, LOCK_UN = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN


def key_hash(key: str) -> int:
    # Stable across processes (Python's hash() is salted per process); 0 marks an empty slot.
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


class SharedWindows:
    def __init__(self, path: Path | str, slots: int = 1 << 16) -> None:
        assert slots & (slots - 1) == 0, "slots: a power of two"
        self.path = Path(path)
        self.slots = slots
        self.size = slots * SLOT.size
        self._lock = threading.Lock()  # flock excludes processes, not threads of one process
        self._fd = -1
        self._hashes: dict[str, int] = {}
        # A forked child maps the file again (see _open); cheaper than a getpid per request.
        os.register_at_fork(after_in_child=self._forget_mapping)

    def _forget_mapping(self) -> None:
        self._fd = -1
        self._lock = threading.Lock()

    def _open(self) -> None:
        # Per process: an flock taken through a descriptor inherited across fork would be the
        # parent's lock too, excluding nobody.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size < self.size:
            os.ftruncate(fd, self.size)
        self._map = mmap.mmap(fd, self.size)
        self._fd = fd

    def _hash(self, key: str) -> int:
        found = self._hashes.get(key)
        if found is None:
            if len(self._hashes) > 8192:
                self._hashes.clear()
            found = self._hashes[key] = key_hash(key)
        return found

    def hit(
        self, key: str, limit: int, period: float, now: float, extra: float = 0.0
    ) -> tuple[bool, float, int]:
        """Count one request for `key` unless that would exceed `limit` in the last `period`
        seconds (`extra`: what other hosts counted). Returns (allowed, count before this
        request, seconds until one would be allowed: 0 when allowed)."""
        window, into = divmod(now, period)
        window = int(window)
        h = self._hashes.get(key) or self._hash(key)
        with self._lock:
            if self._fd < 0:
                self._open()
            flock(self._fd, LOCK_EX)
            try:
                # The usual case inline: the key's own slot, in this window (see _slot).
                offset = (h & (self.slots - 1)) * 24
                k, w, count, prev = unpack_from(self._map, offset)
                if k != h or w != window:
                    offset, count, prev = self._slot(h, window)
                estimate = prev * (1.0 - into / period) + count + extra
                allowed = estimate < limit
                if allowed:
                    pack_into(self._map, offset, h, window, count + 1, prev)
            finally:
                flock(self._fd, LOCK_UN)
        if allowed:
            return True, estimate, 0
        return False, estimate, _retry_after(count + extra, prev, limit, period, into)

    def _slot(self, h: int, window: int) -> tuple[int, int, int]:
        """(offset, count, previous count) of `h`'s slot, rolled to `window`, claimed if new."""
        mask = self.slots - 1
        free = None
        data = self._map
        for i in range(PROBES):
            offset = ((h + i) & mask) * SLOT.size
            key, w, count, prev = SLOT.unpack_from(data, offset)
            if key == h:
                if w == window:
                    return offset, count, prev
                if w == window - 1:
                    SLOT.pack_into(data, offset, h, window, 0, count)
                    return offset, 0, count
                SLOT.pack_into(data, offset, h, window, 0, 0)
                return offset, 0, 0
            if free is None and (key == 0 or w < window - 1):
                free = offset
        offset = (h & mask) * SLOT.size if free is None else free
        SLOT.pack_into(data, offset, h, window, 0, 0)
        return offset, 0, 0

    def count(self, key: str, period: float, now: float) -> float:
        """The current estimate for `key`, without counting."""
        window, into = divmod(now, period)
        with self._lock:
            if self._fd < 0:
                self._open()
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            try:
                h = self._hash(key)
                for i in range(PROBES):
                    offset = ((h + i) & (self.slots - 1)) * SLOT.size
                    k, w, count, prev = SLOT.unpack_from(self._map, offset)
                    if k == h:
                        if w == int(window):
                            return prev * (1.0 - into / period) + count
                        return count * (1.0 - into / period) if w == int(window) - 1 else 0.0
                return 0.0
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def _retry_after(count: float, prev: int, limit: int, period: float, into: float) -> int:
    """Seconds until prev * overlap + count drops below limit: within this window if the
    previous window's share is what is over, else when this window ends."""
    if count < limit and prev > 0:
        # overlap(t) < (limit - count) / prev  <=>  into(t) > period * (1 - (limit-count)/prev)
        wait = period * (1.0 - (limit - count) / prev) - into
    else:
        wait = period - into
    return max(1, math.ceil(wait))
