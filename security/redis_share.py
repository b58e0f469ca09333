"""What other hosts counted, through Redis (REDIS_URL set): the cross-host half of rate limits.

Each process adds its admitted requests for a key to a Redis hash field of its host
(`HINCRBY sec:rl:<window>:<key> <host> n`) once per BATCH requests or SYNC_SECONDS, and reads
the other hosts' fields back in the same round trip. The host's own count stays exact in the
shared memory file; other hosts' counts lag by at most BATCH requests per process or
SYNC_SECONDS. Redis failing opens the shop's breaker: the host then limits on its own counts
(never refusing a request because Redis is down), and tries Redis again when the breaker
half-opens.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

logger = logging.getLogger("security")

BATCH = 16
SYNC_SECONDS = 1.0


class RedisShare:
    def __init__(self, url: str, host: str | None = None, timeout: float = 0.25) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.host = host or socket.gethostname()
        self._lock = threading.Lock()
        # key -> [window, unsent, last sync (monotonic), others' count]
        self._state: dict[str, list] = {}

    def others(self, key: str, window: int) -> int:
        state = self._state.get(key)
        return state[3] if state is not None and state[0] == window else 0

    def admitted(self, key: str, window: int, period: float) -> None:
        now = time.monotonic()
        with self._lock:
            state = self._state.get(key)
            if state is None or state[0] != window:
                if len(self._state) > 8192:
                    self._state.clear()
                state = self._state[key] = [window, 0, 0.0, 0]
            state[1] += 1
            if state[1] < BATCH and now - state[2] < SYNC_SECONDS:
                return
            unsent, state[1], state[2] = state[1], 0, now
        self._sync(key, window, period, unsent, state)

    def _sync(self, key: str, window: int, period: float, unsent: int, state: list) -> None:
        from shop.breaker import breaker

        guard = breaker("redis")
        if not guard.allow():
            return
        name = f"sec:rl:{window}:{key}"
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(name, self.host, unsent)
            pipe.expire(name, int(period * 2) + 1)
            pipe.hgetall(name)
            _, _, fields = pipe.execute()
        except Exception as exc:  # noqa: BLE001 (any Redis failure: count on this host alone)
            guard.failure()
            logger.warning("rate limit: Redis unavailable, counting on this host only: %s", exc)
            return
        guard.success()
        host = self.host.encode()
        state[3] = sum(int(v) for k, v in fields.items() if k != host)
