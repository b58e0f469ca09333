"""The outbox's Celery side: the base class of every task the outbox relays, and the
periodic relay round."""

from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from shop.outbox.relay import relay_all
from shop.outbox.services import JOB_HEADER, prune, run_job


class OutboxTask(Task):
    """A task relayed from the outbox: a message that carries its job runs only if it claims
    the job (a second delivery does nothing). Retries are the outbox's (backoff in the job
    row), not Celery's; nobody reads results, so a hung result backend never holds a worker."""

    ignore_result = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job_id = getattr(self.request, JOB_HEADER, None)
        if job_id is None:  # called directly, or run in-process by run_job
            return super().__call__(*args, **kwargs)
        return run_job(job_id, call=lambda: super(OutboxTask, self).__call__(*args, **kwargs))


@shared_task(name="shop.outbox.relay", ignore_result=True)
def outbox_relay() -> int:
    """Beat's round: jobs left by a process that stopped, retries that came due; old ones go."""
    prune(older_than=timedelta(days=getattr(settings, "OUTBOX_KEEP_DAYS", 7.0)))
    return relay_all()
