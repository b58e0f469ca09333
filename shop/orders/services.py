"""Orders: placing them (reserving stock) and moving them through their statuses."""

import secrets
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from shop import signals
from shop.catalog.services import stock_release, stock_reserve
from shop.errors import Conflict, InvalidRequest, NotFound
from shop.orders.models import Order, OrderItem
from shop.orders.reservations import reservation_limits_check
from shop.outbox.services import enqueue

Status = Order.Status

# Which status may follow which. Payments move pending → paid; staff move the rest.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.PAID, Status.CANCELLED, Status.FAILED}),
    Status.PAID: frozenset({Status.PROCESSING, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.SHIPPED, Status.CANCELLED}),
    Status.SHIPPED: frozenset({Status.DELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.FAILED: frozenset(),
}
# The largest total Order.total (12 digits, 2 decimals) can hold.
MAX_TOTAL = Decimal("9999999999.99")
# Statuses that give the reserved units back.
RELEASES_STOCK = frozenset({Status.CANCELLED, Status.FAILED})


def order_create(*, user: AbstractBaseUser, items: Iterable[tuple[int, int]]) -> Order:
    """Place an order for (product id, quantity) pairs; prices and total come from the catalog."""
    quantities: Counter[int] = Counter()
    for product_id, quantity in items:
        if quantity <= 0:
            raise InvalidRequest("Quantities must be positive.", code="invalid_quantity")
        quantities[product_id] += quantity
    if not quantities:
        raise InvalidRequest("An order needs at least one item.", code="empty_order")
    with transaction.atomic():
        reservation_limits_check(user=user, quantities=quantities)
        products = stock_reserve(quantities=quantities)
        order = Order.objects.create(
            number=_order_number(), user=user, status=Status.PENDING, total=Decimal("0")
        )
        lines = [
            OrderItem(
                order=order,
                product=products[product_id],
                quantity=quantity,
                unit_price=products[product_id].price,
                line_total=products[product_id].price * quantity,
            )
            for product_id, quantity in sorted(quantities.items())
        ]
        order.total = sum((line.line_total for line in lines), Decimal("0"))
        if order.total > MAX_TOTAL:  # raising rolls the stock reservation back too
            raise InvalidRequest(
                f"An order total cannot exceed {MAX_TOTAL}.", code="order_too_large"
            )
        OrderItem.objects.bulk_create(lines)
        order.save(update_fields=["total"])
        _confirmation_enqueue(order)
        transaction.on_commit(lambda: signals.order_placed.send(sender=Order, order=order))
    return order


def order_transition(*, order_id: int, status: str, reason: str = "") -> Order:
    """Move an order to `status` if the lifecycle allows it; refuses with Conflict otherwise."""
    if status not in TRANSITIONS:
        raise InvalidRequest(f"Unknown order status {status!r}.", code="unknown_status")
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFound(f"Order {order_id} does not exist.")
        if status not in TRANSITIONS[order.status]:
            raise Conflict(
                f"An order that is {order.status} cannot become {status}.",
                code="invalid_transition",
            )
        order.status = status
        if status == Status.PAID:
            order.paid_at = timezone.now()
        order.save(update_fields=["status", "paid_at", "updated_at"])
        if status in RELEASES_STOCK:
            stock_release(quantities=_quantities(order))
        if status == Status.CANCELLED and order.paid_at is not None:
            # Imported here: payments build on orders, not the other way round.
            from shop.payments.services import payment_refund_for_order

            payment_refund_for_order(order_id=order.pk)
        transaction.on_commit(lambda: _announce_status(order, reason))
    return order


def _quantities(order: Order) -> dict[int, int]:
    quantities: Counter[int] = Counter()
    for product_id, quantity in order.items.values_list("product_id", "quantity"):
        quantities[product_id] += quantity
    return quantities


def _order_number() -> str:
    return "ORDER-" + secrets.token_hex(6).upper()


def _confirmation_enqueue(order: Order) -> None:
    # In the order's transaction: the email is owed exactly when the order exists (issue 11).
    from shop.orders.tasks import order_confirmation_send

    enqueue(order_confirmation_send, order.pk, key=f"order_confirmation_send:{order.pk}")


def _announce_status(order: Order, reason: str) -> None:
    if order.status == Status.DELIVERED:
        signals.order_completed.send(sender=Order, order=order)
    elif order.status == Status.FAILED:
        signals.order_failed.send(sender=Order, order=order, reason=reason or "failed")
