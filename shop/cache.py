"""Django's Redis cache that degrades to a miss: a Redis that is down or hung costs a request at
most the socket timeout once, then nothing while the breaker is open (reads miss, writes are
dropped). The timeouts themselves are redis-py's (settings CACHES OPTIONS)."""

from __future__ import annotations

from typing import Any

import redis
from django.core.cache.backends.redis import RedisCache

from shop.breaker import CircuitOpen, breaker

ERRORS = (redis.RedisError, OSError)


class ResilientRedisCache(RedisCache):
    def _guarded(self, fallback: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        call = getattr(super(), method)
        try:
            return breaker("redis").call(lambda: call(*args, **kwargs), errors=ERRORS)
        except (CircuitOpen, *ERRORS):
            return fallback

    def get(self, key, default=None, version=None):
        return self._guarded(default, "get", key, default, version)

    def get_many(self, keys, version=None):
        return self._guarded({}, "get_many", keys, version)

    def has_key(self, key, version=None):
        return self._guarded(False, "has_key", key, version)

    def add(self, key, value, timeout=None, version=None):
        return self._guarded(False, "add", key, value, timeout, version)

    def set(self, key, value, timeout=None, version=None):
        return self._guarded(None, "set", key, value, timeout, version)

    def set_many(self, data, timeout=None, version=None):
        return self._guarded(list(data), "set_many", data, timeout, version)

    def touch(self, key, timeout=None, version=None):
        return self._guarded(False, "touch", key, timeout, version)

    def delete(self, key, version=None):
        return self._guarded(False, "delete", key, version)

    def delete_many(self, keys, version=None):
        return self._guarded(None, "delete_many", keys, version)

    def clear(self):
        return self._guarded(False, "clear")
