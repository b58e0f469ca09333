"""A task module nothing imports until the relay needs it (test_task_for.py)."""

from celery import shared_task


@shared_task(name="tests.shop.outbox.late_task.late")
def late() -> str:
    return "late"
