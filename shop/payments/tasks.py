"""Background work for payments: capturing authorised charges."""

from celery import shared_task

from shop.outbox.tasks import OutboxTask
from shop.payments.services import payment_capture


# Relayed from the outbox: run once per job, retried with its backoff (shop/outbox).
@shared_task(base=OutboxTask)
def payment_capture_task(payment_id: int) -> bool:
    """Capture one authorised payment; True once it is captured."""
    return payment_capture(payment_id=payment_id).captured_at is not None
