"""Several simultaneous payments for one order: exactly one charge goes through (PostgreSQL)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from shop.errors import Conflict
from shop.orders.models import Order
from shop.orders.services import order_create
from shop.payments.gateways import Card
from shop.payments.models import Payment
from shop.payments.services import payment_process

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 10


def test_simultaneous_payments_charge_an_order_once(customer, make_product):
    order = order_create(user=customer, items=[(make_product(price=Decimal("8.00")).pk, 2)])
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def pay() -> None:
        card = Card(number="4242424242424242", exp_month=12, exp_year=2099, cvc="123")
        try:
            barrier.wait(timeout=10)
            outcome = payment_process(
                order_id=order.pk, user=customer, provider="sandbox", card=card
            ).status
        except Conflict as refused:
            outcome = refused.code
        except Exception as error:
            outcome = f"error: {error!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=pay) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["order_not_payable"] * (THREADS - 1) + ["succeeded"], outcomes
    assert Payment.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
