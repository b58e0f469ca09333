"""Distinct authenticated users seen in the last 5 and 15 minutes, across worker processes.

The request path only stores ``user id -> last seen`` in a dict of this process. At most every
``flush_interval`` seconds that dict, if it changed, is handed to a shared store:

- with Redis (``REDIS_URL``): one sorted set, scores = last seen, updated with ``ZADD GT`` so a
  late flush never moves a user back in time; correct across hosts;
- otherwise, under several processes (a metrics directory): this process's own file
  ``active_users_<pid>.json`` there (one writer per file, replaced atomically);
- otherwise (one process: tests, management commands): nothing to share.

Counting unites the store with this process's dict, so a scrape writes nothing to files. A
store that fails (Redis down) costs freshness, never a request: the counts fall back to what
this process saw.
"""

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily

from monitoring.metrics import multiprocess_dir

logger = logging.getLogger(__name__)

WINDOWS = {"5m": 300.0, "15m": 900.0}
_HORIZON = max(WINDOWS.values())
_PREFIX = "active_users_"
REDIS_KEY = "monitoring:active_users"

Seen = dict[int, float]


class FileStore:
    """One JSON file per process in a shared directory (one machine)."""

    def __init__(
        self,
        directory: Callable[[], Path | None] = multiprocess_dir,
        process_id: Callable[[], int] = os.getpid,
    ) -> None:
        self.directory = directory
        self.process_id = process_id

    def _own(self) -> str:
        return f"{_PREFIX}{self.process_id()}.json"

    def save(self, seen: Seen, now: float) -> None:
        directory = self.directory()
        if directory is None:
            return
        path = directory / self._own()
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(seen))
        os.replace(temporary, path)

    def load(self, now: float) -> Seen:
        """Every other process's entries (this process's are in memory)."""
        directory = self.directory()
        merged: Seen = {}
        if directory is None:
            return merged
        own = self._own()
        for path in directory.glob(f"{_PREFIX}*.json"):
            if path.name == own:
                continue
            try:
                if path.stat().st_mtime < now - _HORIZON:
                    path.unlink(missing_ok=True)  # a long-dead process: nobody left in it
                    continue
                entries = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for uid, at in entries.items():
                if at > merged.get(int(uid), 0.0):
                    merged[int(uid)] = at
        return merged


class RedisStore:
    """One sorted set shared by every process on every host."""

    def __init__(self, url: str, *, timeout: float = 0.25, key: str = REDIS_KEY) -> None:
        from monitoring.collectors.redis import redis_client

        self.client = redis_client(url, timeout=timeout)
        self.key = key

    def save(self, seen: Seen, now: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        if seen:
            pipe.zadd(self.key, {str(uid): at for uid, at in seen.items()}, gt=True)
        pipe.zremrangebyscore(self.key, "-inf", now - _HORIZON)
        pipe.expire(self.key, int(_HORIZON * 2))
        pipe.execute()

    def load(self, now: float) -> Seen:
        entries = self.client.zrangebyscore(self.key, now - _HORIZON, "+inf", withscores=True)
        return {int(uid): at for uid, at in entries}


def default_store() -> FileStore | RedisStore:
    from django.conf import settings

    url = getattr(settings, "REDIS_URL", "")
    return RedisStore(url) if url else FileStore()


class ActiveUsers:
    def __init__(
        self,
        *,
        store: Callable[[], FileStore | RedisStore] = default_store,
        flush_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._make_store = store
        self._store: FileStore | RedisStore | None = None
        self.flush_interval = flush_interval
        self.clock = clock
        self._seen: Seen = {}
        self._dirty = False
        self._next_flush = 0.0

    @property
    def store(self) -> FileStore | RedisStore:
        if self._store is None:
            self._store = self._make_store()  # settings are read once, on first use
        return self._store

    def seen(self, user_id: int) -> None:
        now = self.clock()
        self._seen[user_id] = now
        self._dirty = True
        if now >= self._next_flush:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._next_flush = now + self.flush_interval
        cutoff = now - _HORIZON
        self._seen = {uid: at for uid, at in self._seen.items() if at >= cutoff}
        if not self._dirty:
            return
        try:
            self.store.save(self._seen, now)
            self._dirty = False
        except Exception as exc:  # a full disk or a Redis outage must not fail the request
            logger.debug("active users not shared: %r", exc)

    def counts(self) -> dict[str, int]:
        """Distinct users per window, e.g. ``{"5m": 3, "15m": 7}``."""
        now = self.clock()
        seen = {uid: at for uid, at in self._seen.items() if at >= now - _HORIZON}
        try:
            shared = self.store.load(now)
        except Exception as exc:
            logger.debug("active users of other processes unavailable: %r", exc)
            shared = {}
        for uid, at in shared.items():
            if at > seen.get(uid, 0.0):
                seen[uid] = at
        return {
            window: sum(1 for at in seen.values() if at >= now - seconds)
            for window, seconds in WINDOWS.items()
        }


class ActiveUsersCollector:
    def __init__(self, active_users: ActiveUsers) -> None:
        self.active_users = active_users

    def describe(self):
        return [GaugeMetricFamily("active_users", "", labels=["window"])]

    def collect(self):
        family = GaugeMetricFamily(
            "active_users",
            "Distinct authenticated users who made a request within the window.",
            labels=["window"],
        )
        for window, count in self.active_users.counts().items():
            family.add_metric([window], count)
        yield family
