import logging
from decimal import Decimal

import pytest

from shop.errors import NotFound
from shop.orders.models import Order
from shop.orders.services import order_create
from shop.payments.models import Payment

pytestmark = [pytest.mark.django_db, pytest.mark.db]

GOOD_CARD = "4242 4242 4242 4242"
DECLINED = "4000000000009995"


@pytest.fixture
def product(make_product):
    return make_product(price=Decimal("20.00"), stock_quantity=10, low_stock_threshold=0)


@pytest.fixture
def order(customer, product):
    return order_create(user=customer, items=[(product.pk, 2)])


def pay(client, target, number=GOOD_CARD, **overrides):
    body = {"order": target.pk, "card_number": number, "exp_month": 12, "exp_year": 2099}
    body["cvc"] = "123"
    body.update(overrides)
    return client.post("/api/payments/", body, format="json")


def test_successful_payment_marks_order_paid_and_is_captured(
    customer_client, order, sent_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = pay(customer_client, order)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "succeeded" and body["amount"] == "40.00"
    assert body["card_last4"] == "4242" and body["provider"] == "sandbox"
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.paid_at is not None
    payment = Payment.objects.get()
    # The capture task ran (eagerly in tests) and settled the charge.
    assert payment.captured_at is not None
    assert payment.provider_reference.startswith("ch_sandbox_")
    assert [s["payment"].pk for s in sent_signals["payment_finished"]] == [payment.pk]
    again = pay(customer_client, order)
    assert again.status_code == 409 and again.json()["code"] == "order_not_payable"


def test_declined_payment_is_stored_logged_and_answered_402(
    customer_client, customer, order, caplog, sent_signals, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.ERROR, logger="payments"):
        with django_capture_on_commit_callbacks(execute=True):
            response = pay(customer_client, order, number=DECLINED)
    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "insufficient_funds"
    assert body["detail"] == "Your card has insufficient funds."
    assert body["payment"]["status"] == "failed"
    payment = Payment.objects.get()
    assert (payment.status, payment.error_code, payment.card_last4) == (
        "failed",
        "insufficient_funds",
        "9995",
    )
    [record] = [r for r in caplog.records if r.name == "payments"]
    assert record.levelno == logging.ERROR and record.getMessage() == "Payment processing failed"
    assert (record.order_id, record.payment_method, record.error_code, record.user_id) == (
        order.number,
        "sandbox",
        "insufficient_funds",
        customer.pk,
    )
    assert [s["payment"].error_code for s in sent_signals["payment_finished"]] == [
        "insufficient_funds"
    ]
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING  # the customer may try another card


def test_card_number_is_never_stored_or_logged(customer_client, order, caplog):
    with caplog.at_level(logging.DEBUG):
        pay(customer_client, order, number="4000 0000 0000 0002")
        pay(customer_client, order, number="4242424242424242")
    for record in caplog.records:
        assert "4000000000000002" not in str(record.__dict__)
        assert "4242424242424242" not in str(record.__dict__)
    stored = [str(row) for row in Payment.objects.values()]
    assert stored and not any("000000000000" in row or "42424242" in row for row in stored)


def test_three_declines_fail_the_order_and_release_stock(
    customer_client, order, product, sent_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        codes = [pay(customer_client, order, number=DECLINED).json()["code"] for _ in range(3)]
    assert codes == ["insufficient_funds"] * 3
    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == Order.Status.FAILED and product.stock_quantity == 10
    assert [s["reason"] for s in sent_signals["order_failed"]] == ["insufficient_funds"]
    fourth = pay(customer_client, order)
    assert fourth.status_code == 409
    assert Payment.objects.filter(order=order).count() == 3


def test_only_the_customer_can_pay_their_order(staff_client, anon_client, order):
    assert pay(anon_client, order).status_code in (401, 403)
    assert pay(staff_client, order).status_code == 403


def test_unknown_order_is_404(customer_client, staff):
    theirs = Order.objects.create(number="ORDER-X", user=staff, total=Decimal("1.00"))
    assert pay(customer_client, theirs).status_code == 404
    missing = pay(customer_client, Order(pk=99999))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"card_number": "4242"}, "card_number"),
        ({"card_number": "4242-abcd-4242-4242"}, "card_number"),
        ({"exp_month": 13}, "exp_month"),
        ({"exp_year": "soon"}, "exp_year"),
        ({"cvc": "12a"}, "cvc"),
        ({"provider": "paypal"}, "provider"),
        ({"order": -1}, "order"),
    ],
)
def test_malformed_payments_are_refused_before_any_attempt(
    customer_client, order, overrides, field
):
    response = pay(customer_client, order, **overrides)
    assert response.status_code == 400 and field in response.json()
    assert not Payment.objects.exists()


def test_payments_are_listed_for_their_owner_only(customer_client, staff_client, order):
    pay(customer_client, order, number=DECLINED)
    pay(customer_client, order)
    mine = customer_client.get("/api/payments/").json()
    assert sorted(p["status"] for p in mine["results"]) == ["failed", "succeeded"]
    payment_id = mine["results"][0]["id"]
    assert customer_client.get(f"/api/payments/{payment_id}/").status_code == 200
    assert staff_client.get("/api/payments/").json()["count"] == 2


def test_capture_is_idempotent(customer_client, order):
    from shop.payments.services import payment_capture

    pay(customer_client, order)
    payment = Payment.objects.get()
    first = payment_capture(payment_id=payment.pk).captured_at
    assert first is not None
    assert payment_capture(payment_id=payment.pk).captured_at == first
    with pytest.raises(NotFound):
        payment_capture(payment_id=424242)


def test_cancelling_a_paid_order_refunds_its_payment(customer_client, order, product):
    pay(customer_client, order, number=DECLINED)
    pay(customer_client, order)
    response = customer_client.post(f"/api/orders/{order.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert sorted(Payment.objects.values_list("status", flat=True)) == ["failed", "refunded"]
    product.refresh_from_db()
    assert product.stock_quantity == 10


def test_refused_refund_keeps_the_order_paid(customer_client, order):
    from shop.errors import Conflict
    from shop.orders.services import order_transition

    pay(customer_client, order)
    Payment.objects.update(provider_reference="ch_unknown")  # a charge the provider never saw
    with pytest.raises(Conflict) as refused:
        order_transition(order_id=order.pk, status=Order.Status.CANCELLED)
    assert refused.value.code == "refund_failed"
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Payment.objects.get().status == "succeeded"
