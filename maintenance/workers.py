"""Celery workers scaled down and back for maintenance, through Celery's remote control.

Scaling down cancels each online worker's consumers (`cancel_consumer`): the worker stays up
(its in-flight tasks finish, it answers pings) but takes no new task; jobs wait in Redis.
Scaling back adds the same consumers (`add_consumer`) and checks with `active_queues` that each
worker consumes them again. Both are idempotent: cancelling a consumer already cancelled, or
adding one already there, changes nothing. Without a broker (no REDIS_URL: tasks run eagerly
in the sending process) there is no worker to scale.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

TIMEOUT = 5.0  # seconds a broadcast waits for the workers' replies
# A busy worker may apply a cancel or an add after its reply window: the check that follows
# looks again for this long before it calls the step failed.
SETTLE_S = 20.0


class WorkersError(Exception):
    pass


def broker_present() -> bool:
    return not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)


def _app():
    from config.celery import app

    return app


def active_queues() -> dict[str, list[str]]:
    """{worker: [queue names it consumes]} of every worker that answers."""
    try:
        replies = _app().control.inspect(timeout=TIMEOUT).active_queues() or {}
    except Exception as exc:  # the broker is unreachable: say so, as the step's failure
        raise WorkersError(f"Celery remote control: {exc}") from exc
    return {worker: sorted(q["name"] for q in queues) for worker, queues in replies.items()}


def _settled(done: Callable[[dict[str, list[str]]], bool]) -> dict[str, list[str]]:
    """active_queues once `done` holds for it, or as it is after SETTLE_S."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        now = active_queues()
        if done(now) or time.monotonic() >= deadline:
            return now
        time.sleep(0.5)


def scale_down() -> dict[str, list[str]]:
    """Cancel every online worker's consumers; returns what each consumed (to add back)."""
    consumed = active_queues()
    control = _app().control
    for worker, queues in consumed.items():
        for queue in queues:
            control.cancel_consumer(queue, destination=[worker], reply=True, timeout=TIMEOUT)

    def still_consuming(now: dict[str, list[str]]) -> dict[str, list[str]]:
        return {w: q for w, q in now.items() if w in consumed and q}

    still = still_consuming(_settled(lambda now: not still_consuming(now)))
    if still:
        raise WorkersError(f"workers still consuming after cancel_consumer: {still}")
    return {w: q for w, q in consumed.items() if q}


def scale_up(consumed: dict[str, list[str]]) -> dict[str, list[str]]:
    """Add back each worker's consumers and check they are active; returns active_queues."""
    control = _app().control
    for worker, queues in consumed.items():
        for queue in queues:
            control.add_consumer(queue, destination=[worker], reply=True, timeout=TIMEOUT)

    def missing_from(now: dict[str, list[str]]) -> dict[str, list[str]]:
        missing = {w: sorted(set(q) - set(now.get(w, []))) for w, q in consumed.items()}
        return {w: q for w, q in missing.items() if q}

    now = _settled(lambda now: not missing_from(now))
    missing = missing_from(now)
    if missing:
        raise WorkersError(f"workers not consuming again (gone or not answering): {missing}")
    return now
