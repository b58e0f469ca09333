"""The outbox's Celery tasks: run one job (sent by the relay), and the periodic relay round."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from shop.outbox.relay import relay_all
from shop.outbox.services import prune, run_job


# Nobody reads results: a result backend that hangs must not hold the worker after the task.
@shared_task(name="shop.outbox.run", ignore_result=True)
def outbox_run(job_id: int) -> str:
    return run_job(job_id)


@shared_task(name="shop.outbox.relay", ignore_result=True)
def outbox_relay() -> int:
    """Beat's round: jobs left by a process that stopped, retries that came due; old ones go."""
    prune(older_than=timedelta(days=getattr(settings, "OUTBOX_KEEP_DAYS", 7.0)))
    return relay_all()
