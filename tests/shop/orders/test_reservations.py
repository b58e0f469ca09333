"""Pending orders hold stock for ORDER_RESERVATION_MINUTES, and a customer holds only so much."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from monitoring.metrics import sample_values
from shop.errors import Conflict
from shop.orders.models import Order
from shop.orders.reservations import reservations_expire
from shop.orders.services import order_create, order_transition
from shop.orders.tasks import order_reservations_expire

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def _counter(name: str) -> float:
    return sum(value for sample, _, value in sample_values(name) if sample == name)


def _age(order: Order, minutes: float) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_an_expired_reservation_gives_its_stock_back(
    customer, make_product, settings, caplog, sent_signals, django_capture_on_commit_callbacks
):
    settings.ORDER_RESERVATION_MINUTES = 30
    poster = make_product(stock_quantity=10)
    old = order_create(user=customer, items=[(poster.pk, 3)])
    fresh = order_create(user=customer, items=[(poster.pk, 2)])
    paid = order_create(user=customer, items=[(poster.pk, 1)])
    order_transition(order_id=paid.pk, status=Order.Status.PAID)
    for order in (old, paid):
        _age(order, 31)
    _age(fresh, 29)
    expired_before = _counter("order_reservations_expired_total")
    units_before = _counter("order_reservation_units_released_total")

    with caplog.at_level(logging.INFO, logger="shop.orders"):
        with django_capture_on_commit_callbacks(execute=True):
            assert order_reservations_expire.apply().get() == 1  # the task beat schedules

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "cancelled", fresh.pk: "pending", paid.pk: "paid"}
    poster.refresh_from_db()
    assert poster.stock_quantity == 10 - 2 - 1
    assert _counter("order_reservations_expired_total") == expired_before + 1
    assert _counter("order_reservation_units_released_total") == units_before + 3
    [record] = [r for r in caplog.records if r.getMessage() == "Order reservation expired"]
    assert record.order_id == old.number and record.units_released == 3
    assert record.age_seconds >= 31 * 60
    assert [s["units"] for s in sent_signals["order_reservation_expired"]] == [3]
    # A second sweep finds nothing left to do.
    assert reservations_expire() == []


def test_an_expired_order_can_no_longer_be_paid(customer_client, customer, make_product):
    order = order_create(user=customer, items=[(make_product().pk, 1)])
    _age(order, 10_000)
    reservations_expire()
    response = customer_client.post(
        "/api/payments/",
        {
            "order": order.pk,
            "card_number": "4242424242424242",
            "exp_month": 12,
            "exp_year": 2099,
            "cvc": "123",
        },
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_payable"


def test_a_customer_holds_at_most_the_configured_pending_orders(
    customer_client, customer, make_product, settings
):
    settings.ORDER_MAX_PENDING = 2
    product = make_product(stock_quantity=100)
    for _ in range(2):
        order_create(user=customer, items=[(product.pk, 1)])
    response = customer_client.post(
        "/api/orders/", {"items": [{"product": product.pk, "quantity": 1}]}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "too_many_pending_orders"
    assert "at most 2 may wait for payment" in body["detail"]
    product.refresh_from_db()
    assert product.stock_quantity == 98  # the refused order took nothing
    # Paying (or cancelling) one makes room again.
    order_transition(order_id=Order.objects.first().pk, status=Order.Status.PAID)
    order_create(user=customer, items=[(product.pk, 1)])


def test_a_customer_holds_at_most_the_configured_pending_units(
    customer_client, customer, staff, make_product, settings
):
    settings.ORDER_MAX_PENDING_UNITS = 10
    product = make_product(stock_quantity=100)
    order_create(user=customer, items=[(product.pk, 6)])
    response = customer_client.post(
        "/api/orders/", {"items": [{"product": product.pk, "quantity": 5}]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_pending_units"
    assert "you hold 6 and this order asks for 5" in response.json()["detail"]
    order_create(user=customer, items=[(product.pk, 4)])  # exactly up to the limit
    order_create(user=staff, items=[(product.pk, 10)])  # another customer's own allowance
    with pytest.raises(Conflict):
        order_create(user=customer, items=[(product.pk, 1)])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_order_being_paid_is_skipped_not_waited_for(customer, make_product):
    """The sweep never blocks behind a payment in progress (it holds the order's row lock)."""
    order = order_create(user=customer, items=[(make_product().pk, 1)])
    _age(order, 10_000)
    locked, release = threading.Event(), threading.Event()

    def payment_in_progress() -> None:
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=order.pk)
                locked.set()
                release.wait(timeout=30)
                order_transition(order_id=order.pk, status=Order.Status.PAID)
        finally:
            connection.close()

    payer = threading.Thread(target=payment_in_progress)
    payer.start()
    try:
        assert locked.wait(timeout=30)
        assert reservations_expire() == []  # returns at once: skipped, not blocked
    finally:
        release.set()
        payer.join(timeout=30)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_expiry_racing_payments_never_charges_a_cancelled_order(customer, make_product):
    """Payments and sweeps at once: each order ends paid (charged, stock kept) or cancelled
    (never charged, stock back), never both."""
    from shop.payments.gateways import Card
    from shop.payments.models import Payment
    from shop.payments.services import payment_process

    product = make_product(stock_quantity=100)
    orders = [order_create(user=customer, items=[(product.pk, 2)]) for _ in range(8)]
    for order in orders:
        _age(order, 10_000)
    card = Card(number="4242424242424242", exp_month=12, exp_year=2099, cvc="123")
    barrier = threading.Barrier(len(orders) + 2)
    errors: list[str] = []

    def run(work) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except Conflict as refused:
            if refused.code != "order_not_payable":
                errors.append(refused.code)
        except Exception as error:  # a deadlock or lock timeout fails the test
            errors.append(repr(error))
        finally:
            connection.close()

    def pay(order: Order):
        return lambda: payment_process(
            order_id=order.pk, user=customer, provider="sandbox", card=card
        )

    threads = [threading.Thread(target=run, args=(pay(order),)) for order in orders]
    threads += [threading.Thread(target=run, args=(reservations_expire,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    reservations_expire()  # whatever a sweep skipped while it was being paid

    assert errors == []
    paid = set(Order.objects.filter(status="paid").values_list("pk", flat=True))
    cancelled = set(Order.objects.filter(status="cancelled").values_list("pk", flat=True))
    assert paid | cancelled == {o.pk for o in orders} and not paid & cancelled
    charged = set(Payment.objects.filter(status="succeeded").values_list("order_id", flat=True))
    assert charged == paid
    assert not Payment.objects.filter(status="refunded").exists()  # no order charged, then expired
    product.refresh_from_db()
    assert product.stock_quantity == 100 - 2 * len(paid)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_orders_of_one_customer_cannot_slip_past_the_limit(
    customer, make_product, settings
):
    settings.ORDER_MAX_PENDING = 3
    product = make_product(stock_quantity=100)
    threads_n = 10
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def place() -> None:
        try:
            barrier.wait(timeout=30)
            order_create(user=customer, items=[(product.pk, 1)])
            outcome = "ok"
        except Conflict as refused:
            outcome = refused.code
        except Exception as error:
            outcome = repr(error)
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=place) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["ok"] * 3 + ["too_many_pending_orders"] * 7, outcomes
    product.refresh_from_db()
    assert product.stock_quantity == 97
