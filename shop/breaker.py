"""A small circuit breaker: fail fast while a dependency is down, probe for its return.

Closed: calls go through. A failure opens it for `reset` seconds, during which `allow()` says
no at once (nobody waits on a server that just timed out). Then one caller is let through as
the probe (half-open): success closes the breaker, failure opens it again for twice as long,
up to `max_reset` (backoff while the outage lasts). One breaker per process and dependency
(`breaker(name)`); thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger("shop.breaker")


class CircuitOpen(Exception):
    """Raised by `CircuitBreaker.call` instead of calling a dependency known to be down."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        reset: float = 1.0,
        max_reset: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.reset = reset
        self.max_reset = max_reset
        self.clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._open_for = reset
        self._probing = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open_until is not None

    def ready(self) -> bool:
        """Would `allow()` say yes now? (Takes no probe: for skipping work before a call.)"""
        with self._lock:
            if self._open_until is None:
                return True
            return not self._probing and self.clock() >= self._open_until

    def allow(self) -> bool:
        """May the caller try the dependency now? While open, only one probe after the wait."""
        with self._lock:
            if self._open_until is None:
                return True
            if self._probing or self.clock() < self._open_until:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            if self._open_until is not None:
                logger.info("circuit closed: %s answers again", self.name)
            self._open_until = None
            self._open_for = self.reset
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            if self._open_until is not None:  # a failed probe (or a late failure): back off
                self._open_for = min(self._open_for * 2, self.max_reset)
            else:  # once per outage, not per failed call
                logger.warning("circuit open: %s failed, failing fast", self.name)
            self._open_until = self.clock() + self._open_for
            self._probing = False

    def call(self, fn: Callable[[], T], *, errors: tuple[type[BaseException], ...]) -> T:
        """fn() if allowed; an exception in `errors` counts as a failure and is re-raised."""
        if not self.allow():
            raise CircuitOpen(self.name)
        try:
            result = fn()
        except errors:
            self.failure()
            raise
        except BaseException:
            # Not the dependency's fault: a probe must not leave the breaker half-open forever.
            with self._lock:
                self._probing = False
            raise
        self.success()
        return result


_breakers: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker(name: str) -> CircuitBreaker:
    """This process's breaker for `name` (settings REDIS_BREAKER_RESET/_MAX_RESET)."""
    with _registry_lock:
        found = _breakers.get(name)
        if found is None:
            from django.conf import settings

            found = _breakers[name] = CircuitBreaker(
                name,
                reset=getattr(settings, "REDIS_BREAKER_RESET", 1.0),
                max_reset=getattr(settings, "REDIS_BREAKER_MAX_RESET", 30.0),
            )
        return found
