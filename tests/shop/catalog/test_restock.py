"""Staff book deliveries into stock: an increment that keeps concurrent reservations."""

import pytest
from django.db import transaction

from shop.catalog.models import MAX_STOCK, Product
from shop.catalog.services import stock_reserve

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_staff_restock_adds_units_to_what_is_in_stock(staff_client, make_product):
    product = make_product(stock_quantity=12, low_stock_threshold=10)
    with transaction.atomic():  # an order takes 5 while the delivery is on its way
        stock_reserve(quantities={product.pk: 5})

    response = staff_client.post(
        f"/api/catalog/products/{product.pk}/restock/", {"quantity": 40}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["stock_quantity"] == 47  # 12 - 5 + 40: the order's 5 stay taken
    assert response.json()["is_low_stock"] is False
    product.refresh_from_db()
    assert product.stock_quantity == 47


def test_restock_is_for_staff_only(anon_client, customer_client, make_product):
    product = make_product(stock_quantity=3)
    url = f"/api/catalog/products/{product.pk}/restock/"
    assert anon_client.post(url, {"quantity": 5}, format="json").status_code == 401
    assert customer_client.post(url, {"quantity": 5}, format="json").status_code == 403
    product.refresh_from_db()
    assert product.stock_quantity == 3


@pytest.mark.parametrize("quantity", [0, -4, "many", 1_000_001, None])
def test_restock_refuses_nonsense_quantities(staff_client, make_product, quantity):
    product = make_product(stock_quantity=3)
    body = {} if quantity is None else {"quantity": quantity}
    response = staff_client.post(
        f"/api/catalog/products/{product.pk}/restock/", body, format="json"
    )
    assert response.status_code == 400
    assert "quantity" in response.json()
    assert Product.objects.get(pk=product.pk).stock_quantity == 3


def test_restock_of_an_unknown_product_answers_404(staff_client):
    response = staff_client.post("/api/catalog/products/999999/restock/", {"quantity": 5})
    assert response.status_code == 404


def test_restock_never_takes_stock_above_the_level_staff_can_set(staff_client, make_product):
    """What staff read they can write back: a delivery past MAX_STOCK is a 409, not a level
    the product form would then refuse (and the schema does not allow)."""
    product = make_product(stock_quantity=MAX_STOCK - 10)
    url = f"/api/catalog/products/{product.pk}/restock/"
    response = staff_client.post(url, {"quantity": 11}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "stock_limit"
    assert staff_client.post(url, {"quantity": 10}, format="json").json()["stock_quantity"] == (
        MAX_STOCK
    )
