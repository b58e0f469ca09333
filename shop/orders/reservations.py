"""Stock held by pending orders: per-customer limits, and expiry after a configured time.

An order reserves its units when it is placed (shop.catalog.services.stock_reserve). Until it
is paid those units are held for nobody, so:

- a customer holds at most `ORDER_MAX_PENDING` pending orders and `ORDER_MAX_PENDING_UNITS`
  units in them (`reservation_limits_check`, called by order_create under a lock on the
  customer's row, so two simultaneous orders of one customer cannot both slip under a limit);
- a pending order older than `ORDER_RESERVATION_MINUTES` is cancelled and its units go back to
  stock (`reservations_expire`, run every `RESERVATION_SWEEP_SECONDS` by Celery beat, or by
  `manage.py beat_inprocess` without Redis).

Expiry against a payment of the same order: payment_process holds the order's row lock while
it charges the card. The sweep locks each order with SKIP LOCKED and re-checks that it is still
pending and old enough: an order being paid is skipped (and is paid, or retried at the next
sweep); an order the sweep has locked makes the payment wait and then refuse (409, not
pending), before any card is charged. SQLite has no row locks but serialises writers
(IMMEDIATE transactions), with the same outcome.
"""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from shop import signals
from shop.errors import Conflict
from shop.orders.models import Order, OrderItem

logger = logging.getLogger("shop.orders")

# Orders looked at per sweep: a backlog is worked off over a few sweeps, never in one
# long-running job.
SWEEP_BATCH = 500


def reservation_limits_check(*, user: AbstractBaseUser, quantities: Mapping[int, int]) -> None:
    """Refuse (409) an order that would take the customer over a pending-order limit.

    Must run inside the order's transaction: the customer's row is locked until it commits.
    """
    assert transaction.get_connection().in_atomic_block, "needs the order's transaction"
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    pending = Order.objects.filter(user=user, status=Order.Status.PENDING)
    orders = pending.count()
    max_orders = settings.ORDER_MAX_PENDING
    if orders + 1 > max_orders:
        raise Conflict(
            f"You have {orders} unpaid orders; at most {max_orders} may wait for payment. "
            "Pay or cancel one first.",
            code="too_many_pending_orders",
        )
    held = (
        OrderItem.objects.filter(order__in=pending).aggregate(units=Sum("quantity"))["units"] or 0
    )
    wanted = sum(quantities.values())
    max_units = settings.ORDER_MAX_PENDING_UNITS
    if held + wanted > max_units:
        raise Conflict(
            f"Unpaid orders may hold at most {max_units} units; you hold {held} and this "
            f"order asks for {wanted}.",
            code="too_many_pending_units",
        )


def reservations_expire(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> list[Order]:
    """Cancel pending orders placed more than ORDER_RESERVATION_MINUTES ago; their stock is
    released. Returns the orders expired by this call (each in its own transaction)."""
    # Imported here: services imports this module for the limits.
    from shop.orders.services import Status, order_transition

    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ORDER_RESERVATION_MINUTES)
    candidates = list(
        Order.objects.filter(status=Status.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    expired = []
    for order_id in candidates:
        with transaction.atomic():
            order = (
                Order.objects.select_for_update(skip_locked=True)
                .filter(pk=order_id, status=Status.PENDING, created_at__lt=cutoff)
                .first()
            )
            if order is None:  # paid, cancelled, or being paid right now
                continue
            units = sum(order.items.values_list("quantity", flat=True))
            order = order_transition(
                order_id=order.pk, status=Status.CANCELLED, reason="reservation_expired"
            )
            age = (now - order.created_at).total_seconds()
            transaction.on_commit(lambda o=order, u=units, a=age: _announce(o, u, a))
        expired.append(order)
    return expired


def _announce(order: Order, units: int, age: float) -> None:
    logger.info(
        "Order reservation expired",
        extra={
            "order_id": order.number,
            "units_released": units,
            "age_seconds": round(age),
            "user_id": order.user_id,
        },
    )
    signals.order_reservation_expired.send(sender=Order, order=order, units=units)
