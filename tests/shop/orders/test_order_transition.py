import pytest

from shop.errors import Conflict
from shop.orders.models import Order
from shop.orders.services import order_create, order_transition

pytestmark = [pytest.mark.django_db, pytest.mark.db]

Status = Order.Status


@pytest.fixture
def product(make_product):
    return make_product(stock_quantity=20, low_stock_threshold=0)


@pytest.fixture
def order(customer, product):
    return order_create(user=customer, items=[(product.pk, 5)])


def test_full_lifecycle_sets_paid_at_and_announces_completion(
    order, sent_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for status in (Status.PAID, Status.PROCESSING, Status.SHIPPED, Status.DELIVERED):
            order = order_transition(order_id=order.pk, status=status)
    order.refresh_from_db()
    assert order.status == Status.DELIVERED and order.paid_at is not None
    assert [s["order"].pk for s in sent_signals["order_completed"]] == [order.pk]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], Status.SHIPPED),
        ([Status.PAID], Status.DELIVERED),
        ([Status.CANCELLED], Status.PAID),
        ([Status.PAID, Status.PROCESSING, Status.SHIPPED], Status.CANCELLED),
        ([Status.FAILED], Status.PENDING),
    ],
)
def test_invalid_transitions_are_refused_with_reason(order, path, refused):
    for status in path:
        order_transition(order_id=order.pk, status=status)
    with pytest.raises(Conflict) as error:
        order_transition(order_id=order.pk, status=refused)
    assert error.value.code == "invalid_transition"
    assert f"cannot become {refused}" in error.value.message


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.FAILED])
def test_cancel_and_fail_release_stock(
    order, product, status, sent_signals, django_capture_on_commit_callbacks
):
    product.refresh_from_db()
    assert product.stock_quantity == 15
    with django_capture_on_commit_callbacks(execute=True):
        order_transition(order_id=order.pk, status=status, reason="card_declined")
    product.refresh_from_db()
    assert product.stock_quantity == 20
    expected = [("card_declined", order.pk)] if status == Status.FAILED else []
    assert [(s["reason"], s["order"].pk) for s in sent_signals["order_failed"]] == expected


def test_customer_cancels_pending_order_over_api(customer_client, order, product):
    response = customer_client.post(f"/api/orders/{order.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = customer_client.post(f"/api/orders/{order.pk}/cancel/")
    assert again.status_code == 409 and "cannot become cancelled" in again.json()["detail"]
    product.refresh_from_db()
    assert product.stock_quantity == 20


def test_staff_moves_status_customers_cannot(staff_client, customer_client, order):
    url = f"/api/orders/{order.pk}/status/"
    assert customer_client.post(url, {"status": "paid"}, format="json").status_code == 403
    wrong = staff_client.post(url, {"status": "shipped"}, format="json")
    assert wrong.status_code == 409 and wrong.json()["code"] == "invalid_transition"
    unknown = staff_client.post(url, {"status": "teleported"}, format="json")
    assert unknown.status_code == 400 and "status" in unknown.json()
    ok = staff_client.post(url, {"status": "paid"}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "paid" and ok.json()["paid_at"]
    missing = staff_client.post("/api/orders/999999/status/", {"status": "paid"}, format="json")
    assert missing.status_code == 404


def test_customer_cannot_cancel_once_processing(customer_client, order):
    order_transition(order_id=order.pk, status=Status.PAID)
    order_transition(order_id=order.pk, status=Status.PROCESSING)
    response = customer_client.post(f"/api/orders/{order.pk}/cancel/")
    assert response.status_code == 409 and "only be cancelled by staff" in response.json()["detail"]
