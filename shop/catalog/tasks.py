"""Background work for the catalog: tell staff when a product needs reordering."""

import logging

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.utils import timezone

from shop.catalog.models import ReorderAlert
from shop.outbox.tasks import OutboxTask

logger = logging.getLogger("shop.catalog")


# Relayed from the outbox: run once per job, retried with its backoff (shop/outbox).
@shared_task(base=OutboxTask)
def reorder_notice_send(alert_id: int) -> int:
    """Email the staff a reorder notice; returns the number of recipients."""
    alert = ReorderAlert.objects.select_related("product").filter(pk=alert_id).first()
    if alert is None or alert.notified_at is not None:
        return 0
    recipients = list(
        User.objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        logger.warning("No staff email address for reorder notice", extra={"alert_id": alert_id})
        return 0
    product = alert.product
    send_mail(
        subject=f"Reorder {product.sku}: {alert.stock_quantity} left",
        message=(
            f"{product.name} ({product.sku}) is down to {alert.stock_quantity} units, "
            f"at or below its reorder threshold of {product.low_stock_threshold}.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    ReorderAlert.objects.filter(pk=alert_id).update(notified_at=timezone.now())
    return len(recipients)
