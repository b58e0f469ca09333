from decimal import Decimal

import pytest
from django.core import mail

from shop.catalog.models import ReorderAlert
from shop.errors import Conflict, InvalidRequest
from shop.orders.models import Order
from shop.orders.services import order_create

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_order_reserves_stock_and_totals_server_side(
    customer_client, customer, make_product, sent_signals, django_capture_on_commit_callbacks
):
    poster = make_product(price=Decimal("12.50"), stock_quantity=30)
    cards = make_product(price=Decimal("0.99"), stock_quantity=500)
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            "/api/orders/",
            {
                "items": [
                    {"product": poster.pk, "quantity": 2},
                    {"product": cards.pk, "quantity": 100},
                    {"product": poster.pk, "quantity": 1},
                ],
                "total": "0.01",  # ignored: the server computes totals
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["total"] == "136.50"
    assert {(i["sku"], i["quantity"], i["line_total"]) for i in body["items"]} == {
        (poster.sku, 3, "37.50"),
        (cards.sku, 100, "99.00"),
    }
    poster.refresh_from_db()
    cards.refresh_from_db()
    assert (poster.stock_quantity, cards.stock_quantity) == (27, 400)
    order = Order.objects.get(pk=body["id"])
    assert order.user == customer and order.number.startswith("ORDER-")
    assert [s["order"] for s in sent_signals["order_placed"]] == [order]
    # The confirmation email (a Celery task, run eagerly here) reached the customer.
    [email] = mail.outbox
    assert email.to == ["cyrus@example.com"] and order.number in email.subject
    assert "136.50" in email.body


def test_shortage_refuses_whole_order_and_takes_nothing(customer, make_product, sent_signals):
    plenty = make_product(stock_quantity=50)
    scarce = make_product(stock_quantity=2)
    with pytest.raises(Conflict) as refused:
        order_create(user=customer, items=[(plenty.pk, 5), (scarce.pk, 3)])
    assert refused.value.code == "insufficient_stock"
    assert "3 requested, 2 available" in refused.value.message
    plenty.refresh_from_db()
    scarce.refresh_from_db()
    assert (plenty.stock_quantity, scarce.stock_quantity) == (50, 2)
    assert not Order.objects.exists()
    assert sent_signals["order_placed"] == []


def test_unknown_or_inactive_products_are_refused(customer, make_product):
    retired = make_product(is_active=False)
    for product_id in (retired.pk, 987654):
        with pytest.raises(InvalidRequest) as refused:
            order_create(user=customer, items=[(product_id, 1)])
        assert refused.value.code == "unknown_product"


def test_api_answers_shortage_409_unknown_product_400(customer_client, make_product):
    scarce = make_product(stock_quantity=1)
    short = customer_client.post(
        "/api/orders/", {"items": [{"product": scarce.pk, "quantity": 2}]}, format="json"
    )
    assert short.status_code == 409 and short.json()["code"] == "insufficient_stock"
    unknown = customer_client.post(
        "/api/orders/", {"items": [{"product": 424242, "quantity": 1}]}, format="json"
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_product"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": "everything"},
        {"items": [{"product": 1}]},
        {"items": [{"product": 1, "quantity": 0}]},
        {"items": [{"product": 1, "quantity": -3}]},
        {"items": [{"product": 1, "quantity": 10**12}]},
        {"items": [{"product": 10**30, "quantity": 1}]},
        {"items": [{"product": "one", "quantity": 1}]},
        {"items": [None]},
    ],
)
def test_api_refuses_malformed_orders(customer_client, body):
    response = customer_client.post("/api/orders/", body, format="json")
    assert response.status_code == 400, response.content
    assert "items" in response.json()


def test_orders_need_authentication_and_are_private(
    anon_client, customer_client, staff_client, staff, make_product
):
    product = make_product()
    assert anon_client.post(
        "/api/orders/", {"items": [{"product": product.pk, "quantity": 1}]}, format="json"
    ).status_code in (401, 403)
    theirs = order_create(user=staff, items=[(product.pk, 1)])
    assert customer_client.get(f"/api/orders/{theirs.pk}/").status_code == 404
    assert customer_client.get("/api/orders/").json()["count"] == 0
    assert staff_client.get(f"/api/orders/{theirs.pk}/").status_code == 200


def test_reorder_alert_once_per_threshold_crossing(
    customer, make_product, staff, sent_signals, django_capture_on_commit_callbacks
):
    product = make_product(stock_quantity=14, low_stock_threshold=10)
    with django_capture_on_commit_callbacks(execute=True):
        order_create(user=customer, items=[(product.pk, 3)])  # 11: above the threshold
        assert not ReorderAlert.objects.exists()
        order_create(user=customer, items=[(product.pk, 1)])  # 10: crosses
        order_create(user=customer, items=[(product.pk, 2)])  # 8: already below
    [alert] = ReorderAlert.objects.all()
    assert alert.product == product and alert.stock_quantity == 10
    assert [s["stock_quantity"] for s in sent_signals["reorder_alert_raised"]] == [10]
    # The reorder notice went to the staff by email (eager Celery task in tests).
    notices = [m for m in mail.outbox if m.subject.startswith("Reorder")]
    assert [m.to for m in notices] == [["darius@example.com"]]
    alert.refresh_from_db()
    assert alert.notified_at is not None


def test_order_too_large_for_the_books_is_refused_and_takes_nothing(customer, make_product):
    gold = make_product(price=Decimal("99999999.99"), stock_quantity=500)
    with pytest.raises(InvalidRequest) as refused:
        order_create(user=customer, items=[(gold.pk, 200)])
    assert refused.value.code == "order_too_large"
    gold.refresh_from_db()
    assert gold.stock_quantity == 500 and not Order.objects.exists()
