"""Background work for payments: capturing authorised charges."""

from celery import shared_task

from shop.payments.services import payment_capture


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def payment_capture_task(payment_id: int) -> bool:
    """Capture one authorised payment; True once it is captured."""
    return payment_capture(payment_id=payment_id).captured_at is not None
