"""The relay: hand committed outbox jobs to Celery when the broker answers.

`relay_once()` takes the due pending jobs (oldest first), claims them (pending → sent, in one
transaction, so two relays never send one job twice) and publishes each as its own task through the
process's Redis circuit breaker. A broker that fails puts the job back and stops the round; the
breaker then fails fast and lets one probe through after a doubling wait (REDIS_BREAKER_RESET
to REDIS_BREAKER_MAX_RESET). A job sent but not run within OUTBOX_REDELIVER_SECONDS is sent
again (a restarted Redis forgets its queue); the task's claim (OutboxTask) makes the duplicate
a no-op.
Without Redis (task_always_eager, the embedded default) jobs run in-process instead.

Where it runs: a daemon thread in each web (and worker) process, woken by every commit that
enqueued a job and every OUTBOX_POLL_SECONDS (requests never wait on the broker), and the
`shop.outbox.relay` beat task. With OUTBOX_RELAY_THREAD off (tests) a commit relays inline.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from shop.breaker import CircuitOpen, breaker
from shop.outbox.models import Job
from shop.outbox.services import JOB_CONTEXTS, JOB_HEADER, job_context, run_job

logger = logging.getLogger("shop.outbox")

State = Job.State
BATCH = 100
# What a broker that is down or hung raises (kombu wraps connection errors; redis-py times out).
BROKER_ERRORS = (OperationalError, redis.RedisError, OSError)


def _celery_app():
    from config.celery import app

    return app


def in_process() -> bool:
    """No broker (REDIS_URL unset): tasks run eagerly in this process."""
    return bool(_celery_app().conf.task_always_eager)


def task_for(name: str):
    """The registered Celery task `name`. A web process registers a task only when its module
    is imported (Celery's autodiscovery runs in workers): a relay thread sending a job another
    process wrote may not have it yet, so its module is imported first. An unknown module
    raises (the job cannot be sent)."""
    app = _celery_app()
    if name not in app.tasks:
        importlib.import_module(name.rpartition(".")[0])
    return app.tasks[name]


def publish(job: Job) -> None:
    """One job to the broker as its own task, with the job's headers and id (no retries of its
    own: the breaker and the relay retry)."""
    task = task_for(job.task)
    with job_context(job.headers):
        task.apply_async(job.args, headers={**job.headers, JOB_HEADER: job.pk}, retry=False)


def requeue_lost(*, now=None) -> int:
    """Sent jobs not started within the redelivery time go back to pending."""
    now = now or timezone.now()
    lost_since = now - timedelta(seconds=getattr(settings, "OUTBOX_REDELIVER_SECONDS", 300.0))
    return Job.objects.filter(state=State.SENT, sent_at__lt=lost_since).update(
        state=State.PENDING, due_at=now
    )


def claim_due(*, limit: int) -> list[int]:
    """Take up to `limit` due pending jobs, oldest first, in one transaction (pending → sent).

    On PostgreSQL rows another relay is claiming are skipped (SKIP LOCKED); on SQLite the
    IMMEDIATE transaction serialises the relays. Either way no job is claimed twice."""
    now = timezone.now()
    with transaction.atomic():
        due = Job.objects.filter(state=State.PENDING, due_at__lte=now).order_by("due_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            Job.objects.filter(pk__in=ids).update(state=State.SENT, sent_at=now)
    return ids


def relay_once(*, limit: int = BATCH) -> int:
    """One round: returns how many jobs were handed over (sent, or run in-process)."""
    requeue_lost()
    if in_process():
        ids = claim_due(limit=limit)
        # The jobs' headers only when something uses them (tracing): a query less otherwise.
        headers = {}
        if JOB_CONTEXTS and ids:
            headers = dict(Job.objects.filter(pk__in=ids).values_list("pk", "headers"))
        for job_id in ids:
            with job_context(headers.get(job_id, {})):
                run_job(job_id)
        return len(ids)
    broker = breaker("redis")
    if not broker.ready():
        return 0
    ids = claim_due(limit=limit)
    jobs = Job.objects.in_bulk(ids)
    for handed, job_id in enumerate(ids):
        try:
            broker.call(lambda job=jobs[job_id]: publish(job), errors=BROKER_ERRORS)
        except (CircuitOpen, *BROKER_ERRORS) as exc:
            # The broker is gone: this job and the rest wait for the breaker's next probe.
            Job.objects.filter(pk__in=ids[handed:], state=State.SENT).update(state=State.PENDING)
            if not isinstance(exc, CircuitOpen):
                logger.warning("outbox relay: broker unavailable", extra={"error": repr(exc)})
            return handed
        except Exception as exc:  # not the broker: this job cannot be sent (an unknown task)
            error = f"{type(exc).__name__}: {exc}"[:1000]
            Job.objects.filter(pk=job_id).update(
                state=State.DEAD, finished_at=timezone.now(), last_error=error
            )
            logger.error(
                "outbox job cannot be sent", extra={"job": jobs[job_id].key, "error": error}
            )
    return len(ids)


def relay_all() -> int:
    """Rounds until a round hands over less than a batch (a backlog after an outage)."""
    total = 0
    while True:
        handed = relay_once()
        total += handed
        if handed < BATCH:
            return total


# --- the relay thread of this process ---

_lock = threading.Lock()
_wake = threading.Event()
_thread_pid: int | None = None


def thread_enabled() -> bool:
    return bool(getattr(settings, "OUTBOX_RELAY_THREAD", True))


def ensure_thread() -> None:
    """Start this process's relay thread (again after a fork: threads do not survive one)."""
    global _thread_pid, _wake
    with _lock:
        if _thread_pid == os.getpid():
            return
        _thread_pid = os.getpid()
        _wake = threading.Event()
        threading.Thread(target=_loop, args=(_wake,), name="outbox-relay", daemon=True).start()


def _loop(wake: threading.Event) -> None:
    poll = getattr(settings, "OUTBOX_POLL_SECONDS", 2.0)
    while True:
        wake.wait(poll)
        wake.clear()
        try:
            relay_all()
        except Exception:
            logger.exception("outbox relay round failed")
        finally:
            connections.close_all()  # this thread's connections only


def kick() -> None:
    """A transaction enqueued a job: wake the relay (or relay inline without a thread)."""
    if thread_enabled():
        ensure_thread()
        _wake.set()
        return
    try:
        relay_all()
    except Exception:  # the job is safe in the table; the next round takes it
        logger.exception("outbox relay round failed")
