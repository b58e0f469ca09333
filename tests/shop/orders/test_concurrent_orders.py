"""Many customers at once for the last units of one product: never oversold (PostgreSQL)."""

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection

from shop.errors import Conflict
from shop.orders.models import Order, OrderItem
from shop.orders.services import order_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20
STOCK = 5


def test_concurrent_orders_for_last_units_never_oversell(make_product):
    last_units = make_product(stock_quantity=STOCK, low_stock_threshold=2)
    # A second product ordered in the opposite item order: locks are still taken in id order.
    other = make_product(stock_quantity=1000)
    users = [
        User.objects.create_user(f"buyer{i}", f"b{i}@example.com", "x") for i in range(THREADS)
    ]
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(user: User, reverse: bool) -> None:
        items = [(last_units.pk, 1), (other.pk, 1)]
        try:
            barrier.wait(timeout=10)
            order_create(user=user, items=items[::-1] if reverse else items)
            outcome = "ok"
        except Conflict as refused:
            outcome = refused.code
        except Exception as error:  # anything else (deadlock, lock timeout) fails the test
            outcome = f"error: {error!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=buy, args=(u, i % 2 == 1)) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(set(outcomes)) == ["insufficient_stock", "ok"], outcomes
    assert outcomes.count("ok") == STOCK
    last_units.refresh_from_db()
    other.refresh_from_db()
    assert last_units.stock_quantity == 0
    assert other.stock_quantity == 1000 - STOCK
    assert Order.objects.count() == STOCK
    sold = sum(OrderItem.objects.filter(product=last_units).values_list("quantity", flat=True))
    assert sold == STOCK
    # The threshold (2) was crossed once, by exactly one of the orders.
    assert last_units.reorder_alerts.count() == 1
