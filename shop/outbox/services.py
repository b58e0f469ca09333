"""The outbox: record a task with the change that causes it; run each recorded job once.

`enqueue` writes a Job row in the caller's transaction, so the task is known exactly when the
change is (a rollback drops both; a broker that is down loses neither). The relay
(`shop.outbox.relay`) hands committed jobs to Celery, or runs them in-process without Redis.
`run_job` claims a job with one conditional UPDATE before running it: a message delivered
twice (redelivery after a broker restart, two relays) runs the task once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from shop.outbox.models import Job

logger = logging.getLogger("shop.outbox")

State = Job.State
# The header a relayed task message carries: the job it runs (OutboxTask claims it).
JOB_HEADER = "outbox_job"
# Functions giving headers for a job's message from the enqueuing context (the request id and
# user id: monitoring registers its provider at start; the shop knows nothing of it).
CONTEXT_PROVIDERS: list[Callable[[], dict[str, Any]]] = []
# Context managers entered, with a job's headers, around handing the job over (its publish, or
# its run in-process): tracing restores the trace of the request that enqueued it.
JOB_CONTEXTS: list[Callable[[dict[str, Any]], contextlib.AbstractContextManager]] = []


def job_context(headers: dict[str, Any]) -> contextlib.AbstractContextManager:
    if not JOB_CONTEXTS:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for provider in JOB_CONTEXTS:
        stack.enter_context(provider(headers))
    return stack


def _context_headers() -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for provider in CONTEXT_PROVIDERS:
        headers.update(provider())
    return headers


def enqueue(task: Task, *args: Any, key: str) -> Job:
    """Record that `task(*args)` must run once the current transaction commits.

    `key` names the intent (one job per key: asking twice is asking once).
    """
    assert transaction.get_connection().in_atomic_block, "enqueue needs the caller's transaction"
    job, _ = Job.objects.get_or_create(
        key=key,
        defaults={
            "task": task.name,
            "args": list(args),
            "headers": _context_headers(),
            "due_at": timezone.now(),
        },
    )
    from shop.outbox.relay import kick

    transaction.on_commit(kick)
    return job


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failed run: base, doubling, at most an hour."""
    base = getattr(settings, "OUTBOX_RETRY_SECONDS", 30.0)
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600.0))


def run_job(job_id: int, call: Callable[[], Any] | None = None) -> str:
    """Run one job if nobody has: 'done', 'retry', 'dead', or 'skipped' (already claimed).

    `call` runs the task (a worker's OutboxTask passes its own body); by default the task is
    called in this process (in-process mode, without a broker).

    A job that fails is put back (pending, due after a backoff) or, after
    OUTBOX_MAX_ATTEMPTS, given up as dead. A process that dies while running a job leaves it
    `running` (never re-run: an email may have gone out) and in the backlog, which alerts.
    """
    claimed = Job.objects.filter(pk=job_id, state__in=(State.PENDING, State.SENT)).update(
        state=State.RUNNING, attempts=F("attempts") + 1
    )
    if not claimed:
        return "skipped"
    job = Job.objects.get(pk=job_id)
    try:
        if call is None:
            current_app.tasks[job.task](*job.args)
        else:
            call()
    except Exception as exc:
        return _failed(job, exc)
    Job.objects.filter(pk=job_id).update(
        state=State.DONE, finished_at=timezone.now(), last_error=""
    )
    logger.info("outbox job done", extra={"job": job.key, "task_name": job.task})
    return "done"


def _failed(job: Job, exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"[:1000]
    now = timezone.now()
    if job.attempts >= getattr(settings, "OUTBOX_MAX_ATTEMPTS", 8):
        Job.objects.filter(pk=job.pk).update(state=State.DEAD, finished_at=now, last_error=error)
        logger.error("outbox job dead", extra={"job": job.key, "error": error})
        return "dead"
    Job.objects.filter(pk=job.pk).update(
        state=State.PENDING, due_at=now + retry_delay(job.attempts), last_error=error
    )
    logger.warning("outbox job failed, will retry", extra={"job": job.key, "error": error})
    return "retry"


def prune(*, older_than: timedelta) -> int:
    """Delete finished (done) jobs older than `older_than`; dead ones stay for a person."""
    cutoff = timezone.now() - older_than
    deleted, _ = Job.objects.filter(state=State.DONE, finished_at__lt=cutoff).delete()
    return deleted
