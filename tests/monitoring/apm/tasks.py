"""A task that fails, for the APM tests' worker (`celery -A config worker -I` this module)."""

import os

from celery import shared_task

# This run's queue: a concurrent run's worker never takes our tasks.
QUEUE = os.environ.get("APM_TEST_QUEUE") or f"apm-{os.getpid()}"


@shared_task(name="tests.apm.charge")
def charge(card_number: str, api_token: str) -> None:
    raise ValueError(f"card {card_number} declined for api_token={api_token}")
