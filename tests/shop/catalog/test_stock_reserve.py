"""Reserving stock at its edge: the last units can be sold, one more cannot. On SQLite too:
the PostgreSQL-only concurrency test was the only one to notice a `>` for `>=` here."""

import pytest
from django.db import transaction

from shop.catalog.services import stock_reserve
from shop.errors import Conflict

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_the_last_units_of_a_product_can_be_reserved(make_product):
    product = make_product(stock_quantity=2)
    with transaction.atomic():
        stock_reserve(quantities={product.pk: 2})
    product.refresh_from_db()
    assert product.stock_quantity == 0


def test_one_unit_more_than_in_stock_is_refused_and_nothing_is_taken(make_product):
    product = make_product(stock_quantity=2)
    with pytest.raises(Conflict), transaction.atomic():
        stock_reserve(quantities={product.pk: 3})
    product.refresh_from_db()
    assert product.stock_quantity == 2


def test_a_customer_can_order_the_last_unit(customer_client, make_product):
    product = make_product(stock_quantity=1)
    response = customer_client.post(
        "/api/orders/", {"items": [{"product": product.pk, "quantity": 1}]}, format="json"
    )
    assert response.status_code == 201, response.content
    product.refresh_from_db()
    assert product.stock_quantity == 0
    again = customer_client.post(
        "/api/orders/", {"items": [{"product": product.pk, "quantity": 1}]}, format="json"
    )
    assert again.status_code == 409
