"""Distinct authenticated users seen in the last 5 and 15 minutes, across worker processes.

The request path only stores ``user id -> last seen`` in a dict of this process. At most every
``flush_interval`` seconds that dict, if it changed, is written to this process's own file
``active_users_<pid>.json`` in the metrics directory (one writer per file, replaced atomically,
so processes never race). Counting unites the other processes' files with this process's
dict, so a scrape writes nothing. Without a metrics directory
(a single process: tests, management commands) counting reads the dict alone.
"""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily

from monitoring.metrics import multiprocess_dir

WINDOWS = {"5m": 300.0, "15m": 900.0}
_HORIZON = max(WINDOWS.values())
_PREFIX = "active_users_"


class ActiveUsers:
    def __init__(
        self,
        *,
        directory: Callable[[], Path | None] = multiprocess_dir,
        flush_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        process_id: Callable[[], int] = os.getpid,
    ) -> None:
        self.directory = directory
        self.process_id = process_id
        self.flush_interval = flush_interval
        self.clock = clock
        self._seen: dict[int, float] = {}
        self._dirty = False
        self._next_flush = 0.0

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
        directory = self.directory()
        if directory is None or not self._dirty:
            return
        path = directory / self._file_name()
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(self._seen))
            os.replace(temporary, path)
            self._dirty = False
        except OSError:
            pass  # a full or missing disk must not fail the request; counts go stale

    def _file_name(self) -> str:
        return f"{_PREFIX}{self.process_id()}.json"

    def _all_seen(self, now: float) -> dict[int, float]:
        merged = {uid: at for uid, at in self._seen.items() if at >= now - _HORIZON}
        directory = self.directory()
        if directory is None:
            return merged
        own = self._file_name()  # this process's own entries are the in-memory ones
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
                uid = int(uid)
                if at > merged.get(uid, 0.0):
                    merged[uid] = at
        return merged

    def counts(self) -> dict[str, int]:
        """Distinct users per window, e.g. ``{"5m": 3, "15m": 7}``."""
        now = self.clock()
        seen = self._all_seen(now)
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
