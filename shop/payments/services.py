"""Payments: one Payment row per attempt, through the gateway the customer picked."""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from shop import signals
from shop.errors import Conflict, NotFound, PermissionDenied
from shop.orders.models import Order
from shop.orders.services import order_transition
from shop.outbox.services import enqueue
from shop.payments.gateways import Card, gateway_get
from shop.payments.models import Payment

logger = logging.getLogger("payments")

# After this many declined attempts an order is given up as failed (its stock is released).
MAX_FAILED_ATTEMPTS = 3


def payment_process(*, order_id: int, user: AbstractBaseUser, provider: str, card: Card) -> Payment:
    """Charge a pending order's total; a decline is returned as a failed Payment, not raised.

    The order row stays locked for the whole attempt, so two simultaneous payments for one
    order cannot both be charged.
    """
    gateway = gateway_get(name=provider)
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or not (user.is_staff or order.user_id == user.pk):
            raise NotFound(f"Order {order_id} does not exist.")
        if order.user_id != user.pk:
            raise PermissionDenied("Only the customer who placed an order can pay for it.")
        if order.status != Order.Status.PENDING:
            raise Conflict(
                f"Order {order.number} is {order.status}; only pending orders can be paid.",
                code="order_not_payable",
            )
        payment = Payment.objects.create(
            order=order,
            provider=gateway.name,
            amount=order.total,
            currency=order.currency,
            status=Payment.Status.PENDING,
            card_last4=card.last4,
        )
        result = gateway.charge(
            amount=order.total, currency=order.currency, card=card, description=order.number
        )
        payment.provider_reference = result.reference
        if result.succeeded:
            payment.status = Payment.Status.SUCCEEDED
            payment.save(update_fields=["status", "provider_reference", "updated_at"])
            order_transition(order_id=order.pk, status=Order.Status.PAID)
        else:
            payment.status = Payment.Status.FAILED
            payment.error_code = result.error_code
            payment.save(update_fields=["status", "error_code", "provider_reference", "updated_at"])
            # The specification's structured log entry; the JSON formatter makes the extra
            # keys top-level fields and payment_errors_total is counted from them.
            logger.error(
                "Payment processing failed",
                extra={
                    "order_id": order.number,
                    "payment_method": gateway.name,
                    "error_code": result.error_code,
                    "user_id": user.pk,
                },
            )
            failures = order.payments.filter(status=Payment.Status.FAILED).count()
            if failures >= MAX_FAILED_ATTEMPTS:
                order_transition(
                    order_id=order.pk, status=Order.Status.FAILED, reason=result.error_code
                )
        if payment.status == Payment.Status.SUCCEEDED:
            # In the charge's transaction: a paid order always has its capture owed.
            from shop.payments.tasks import payment_capture_task

            enqueue(payment_capture_task, payment.pk, key=f"payment_capture_task:{payment.pk}")
        transaction.on_commit(lambda: _announce(payment))
    return payment


def payment_capture(*, payment_id: int) -> Payment:
    """Settle an authorised payment with its provider (run by a Celery task)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None:
            raise NotFound(f"Payment {payment_id} does not exist.")
        if payment.status != Payment.Status.SUCCEEDED or payment.captured_at is not None:
            return payment
        result = gateway_get(name=payment.provider).capture(
            reference=payment.provider_reference, amount=payment.amount
        )
        if not result.succeeded:
            logger.error(
                "Payment capture failed",
                extra={
                    "order_id": payment.order.number,
                    "payment_method": payment.provider,
                    "error_code": result.error_code,
                    "user_id": payment.order.user_id,
                },
            )
            return payment
        payment.captured_at = timezone.now()
        payment.save(update_fields=["captured_at", "updated_at"])
    return payment


def payment_refund_for_order(*, order_id: int) -> list[Payment]:
    """Refund the order's succeeded payments (it was cancelled after being paid).

    Runs inside the cancelling transaction: a refund the provider refuses raises Conflict
    and the cancellation is rolled back with it.
    """
    refunded = []
    payments = Payment.objects.select_for_update().filter(
        order_id=order_id, status=Payment.Status.SUCCEEDED
    )
    for payment in payments:
        result = gateway_get(name=payment.provider).refund(
            reference=payment.provider_reference, amount=payment.amount
        )
        if not result.succeeded:
            raise Conflict(
                f"The payment provider refused the refund ({result.error_code}).",
                code="refund_failed",
            )
        payment.status = Payment.Status.REFUNDED
        payment.save(update_fields=["status", "updated_at"])
        refunded.append(payment)
    return refunded


def _announce(payment: Payment) -> None:
    signals.payment_finished.send(sender=Payment, payment=payment)
