"""Unique visitors per day, counted without a database write per request.

Who is a visitor: a browser that keeps our cookie is its cookie; a client that sends none (a
script, a crawler, a health probe from outside, a first request) is its address and user
agent. Either is hashed with a key derived from SECRET_KEY and the day, so neither raw cookies
nor addresses are stored, and ids of different days cannot be linked. The middleware
(shop/visits/middleware.py) skips requests whose day cookie says they were counted today, so a
browser costs one `add` a day; a cookie-less client one `add` per request, which each process
answers from its own set of the day's ids after the first (one write per id and process).

Where the ids go, picked once per process:

- with REDIS_URL, a HyperLogLog per day (`PFADD pasargad:visitors:<day>`; kept 3 days):
  constant memory, one Redis round trip per add, shared by every worker and host; ~0.8 %
  standard error above a few hundred visitors, exact below. A Redis error loses that add (the
  request goes on) and Redis is left alone for `REDIS_RETRY_SECONDS`; a warning at most once a
  minute.
- without Redis, each process keeps the day's ids in memory (each id queued once) and inserts
  the new ones into `Visit` in one `bulk_create(ignore_conflicts=True)` per batch (every
  FLUSH_SECONDS or BATCH ids): the unique constraint merges the workers' batches. A batch is
  written by the next request after it is due (or at exit, or when this process counts): a
  worker that goes idle holds its last few ids until then, which only a quiet shop notices.

`visitors_on(day)` reads the count back (the business collector's conversion rate).
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger("shop.visits")

REDIS_KEY = "pasargad:visitors:{day}"
REDIS_TTL_SECONDS = 3 * 86400
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_SECONDS = 5.0
WARN_EVERY_SECONDS = 60.0
FLUSH_SECONDS = 5.0
BATCH = 200
MAX_SEEN_PER_DAY = 100_000  # memory bound; beyond it the database's constraint deduplicates


def visitor_id(*, day: datetime.date, cookie: str = "", address: str = "", agent: str = "") -> str:
    """The day's id of a visitor: its cookie if it has one, else its address and user agent."""
    raw = f"c:{cookie}" if cookie else f"a:{address}|{agent[:256]}"
    key = hashlib.sha256(f"visitors:{settings.SECRET_KEY}".encode()).digest()
    digest = hashlib.blake2b(f"{day.isoformat()}|{raw}".encode(), key=key, digest_size=16)
    return digest.hexdigest()


class _Warner:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._next = float("-inf")

    def warn(self, message: str, *args) -> None:
        now = self.clock()
        if now >= self._next:
            self._next = now + WARN_EVERY_SECONDS
            logger.warning(message, *args)


class _DaySet:
    """The ids this process has seen today (bounded; a new day starts empty)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day: datetime.date | None = None
        self._ids: set[str] = set()

    def has(self, day: datetime.date, visitor: str) -> bool:
        return day == self._day and visitor in self._ids

    def add(self, day: datetime.date, visitor: str) -> bool:
        """Remember `visitor`; False if it was already remembered."""
        with self._lock:
            if day != self._day:
                self._day, self._ids = day, set()
            if visitor in self._ids:
                return False
            if len(self._ids) < MAX_SEEN_PER_DAY:
                self._ids.add(visitor)
            return True

    def clear(self) -> None:
        with self._lock:
            self._day, self._ids = None, set()


class RedisVisitors:
    """A HyperLogLog per day in Redis."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.clock = clock
        self._skip_until = float("-inf")
        self._warner = _Warner(clock)
        self._seen = _DaySet()  # a script's burst costs one PFADD per process, not one each

    def add(self, day: datetime.date, visitor: str, user_id: int | None = None) -> None:
        if self.clock() < self._skip_until or self._seen.has(day, visitor):
            return
        key = REDIS_KEY.format(day=day.isoformat())
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.pfadd(key, visitor)
            pipe.expire(key, REDIS_TTL_SECONDS)
            pipe.execute()
            self._seen.add(day, visitor)
        except Exception as error:  # redis.RedisError, OSError: the request goes on
            self._skip_until = self.clock() + REDIS_RETRY_SECONDS
            self._warner.warn("Visitors not counted: Redis failed (%s)", error)

    def count(self, day: datetime.date) -> int:
        return int(self.client.pfcount(REDIS_KEY.format(day=day.isoformat())))

    def flush(self) -> None:
        pass


class BatchedVisitors:
    """The day's new ids kept in memory, inserted into Visit in batches."""

    def __init__(
        self,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        batch: int = BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flush_seconds = flush_seconds
        self.batch = batch
        self.clock = clock
        self._lock = threading.Lock()
        self._seen = _DaySet()
        self._pending: list[tuple[datetime.date, str, int | None]] = []
        self._next_flush = clock() + flush_seconds
        self._warner = _Warner(clock)

    def add(self, day: datetime.date, visitor: str, user_id: int | None = None) -> None:
        if not self._seen.add(day, visitor):
            return
        with self._lock:
            self._pending.append((day, visitor, user_id))
            due = len(self._pending) >= self.batch or self.clock() >= self._next_flush
        if due:
            self.flush()

    def flush(self) -> None:
        from shop.visits.models import Visit

        with self._lock:
            pending, self._pending = self._pending, []
            self._next_flush = self.clock() + self.flush_seconds
        if not pending:
            return
        rows = [Visit(day=day, visitor_key=key, user_id=user) for day, key, user in pending]
        try:
            Visit.objects.bulk_create(rows, ignore_conflicts=True)
        except Exception as error:  # the database is down: those visitors are not counted
            self._warner.warn("%d visitors not counted: %s", len(rows), error)

    def count(self, day: datetime.date) -> int:
        from shop.visits.models import Visit

        self.flush()  # this process's latest; other workers' are at most FLUSH_SECONDS behind
        return Visit.objects.filter(day=day).count()

    def forget(self) -> None:
        """For tests: drop what this process remembers (the database was rolled back)."""
        self._seen.clear()
        with self._lock:
            self._pending = []


_visitors: RedisVisitors | BatchedVisitors | None = None
_visitors_lock = threading.Lock()


def visitors() -> RedisVisitors | BatchedVisitors:
    """This process's counter: Redis's HyperLogLog with REDIS_URL, batches to the database
    without."""
    global _visitors
    with _visitors_lock:
        if _visitors is None:
            url = getattr(settings, "REDIS_URL", "")
            _visitors = RedisVisitors(url) if url else BatchedVisitors()
            atexit.register(_visitors.flush)
        return _visitors
