"""Blocked client addresses: the database holds them (every host sees the same), each process
keeps a copy refreshed at most once a second for the hot path; login paths ask the database
itself, so the attempt after a block is refused whichever worker or host it reaches."""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

logger = logging.getLogger("security")

REFRESH_SECONDS = 1.0


class BlockList:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # ip -> Unix time the block ends
        self._loaded = -math.inf
        self._lock = threading.Lock()

    def retry_after(self, ip: str, *, authoritative: bool = False) -> int:
        """Seconds left of `ip`'s block, 0 when it is not blocked."""
        now = time.time()
        if authoritative:
            until = _database_until(ip)
        else:
            if time.monotonic() - self._loaded > REFRESH_SECONDS:
                self._refresh()
            until = self._until.get(ip)
        if until is None or until <= now:
            return 0
        return max(1, math.ceil(until - now))

    def _refresh(self) -> None:
        from security.models import BlockedIp

        if not self._lock.acquire(blocking=False):
            return  # another thread is at it; use the copy we have
        try:
            self._loaded = time.monotonic()  # also after a failure: not a query per request
            rows = BlockedIp.objects.filter(until__gt=timezone.now()).values_list("ip", "until")
            self._until = {ip: until.timestamp() for ip, until in rows}
        except DatabaseError:
            pass  # keep the last copy; the database's own alerts cover the outage
        finally:
            self._lock.release()

    def forget(self) -> None:
        self._loaded = -math.inf


def _database_until(ip: str) -> float | None:
    from security.models import BlockedIp

    try:
        until = BlockedIp.objects.filter(ip=ip).values_list("until", flat=True).first()
    except DatabaseError:
        return None  # never refuse because the database is down
    return until.timestamp() if until is not None else None


BLOCKS = BlockList()


def block(ip: str, seconds: int, reason: str) -> None:
    from security.models import BlockedIp

    until = timezone.now() + timedelta(seconds=seconds)
    BlockedIp.objects.update_or_create(ip=ip, defaults={"until": until, "reason": reason[:200]})
    BLOCKS.forget()


def unblock(ip: str, *, actor: str) -> bool:
    """Lift `ip`'s block; False when it was not blocked. Recorded as an event."""
    from security import events
    from security.models import BlockedIp

    deleted, _ = BlockedIp.objects.filter(ip=ip).delete()
    BLOCKS.forget()
    if deleted:
        events.record("ip_unblocked", ip=ip, actor=actor)
    return bool(deleted)


def active() -> list:
    from security.models import BlockedIp

    return list(BlockedIp.objects.filter(until__gt=timezone.now()).order_by("-blocked_at"))
