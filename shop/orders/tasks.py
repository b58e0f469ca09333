"""Background work for orders: the confirmation email, the expiry of reservations."""

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from shop.orders.models import Order
from shop.outbox.tasks import OutboxTask


# Relayed from the outbox: run once per job, retried with its backoff (shop/outbox).
@shared_task(base=OutboxTask)
def order_confirmation_send(order_id: int) -> bool:
    """Email the customer their order summary; False when there is nobody to write to."""
    order = Order.objects.select_related("user").filter(pk=order_id).first()
    if order is None or order.user is None or not order.user.email:
        return False
    lines = "\n".join(
        f"  {item.quantity} x {item.product.name} ({item.product.sku}) "
        f"@ {item.unit_price} = {item.line_total}"
        for item in order.items.select_related("product")
    )
    send_mail(
        subject=f"Pasargad Prints order {order.number} received",
        message=(
            f"Thank you for your order {order.number}.\n\n{lines}\n\n"
            f"Total: {order.total} {order.currency}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.user.email],
    )
    return True


@shared_task(ignore_result=True)
def order_reservations_expire() -> int:
    """Release the stock of pending orders past their reservation time (Celery beat, or
    `manage.py beat_inprocess`, every RESERVATION_SWEEP_SECONDS)."""
    from shop.orders.reservations import reservations_expire

    return len(reservations_expire())
