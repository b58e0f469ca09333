"""Staff manage the shop in Django's admin: every shop model has a working admin page."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from shop.orders.services import order_create

pytestmark = [pytest.mark.django_db, pytest.mark.db]

SHOP_APPS = ["catalog", "orders", "payments", "visits"]


def test_every_shop_model_is_in_the_admin():
    missing = [
        model.__name__
        for label in SHOP_APPS
        for model in apps.get_app_config(label).get_models()
        if not admin.site.is_registered(model)
    ]
    assert missing == []


def test_staff_can_open_every_shop_admin_page(client, make_product):
    superuser = User.objects.create_superuser("root", "root@example.com", "pw")
    product = make_product(stock_quantity=5, low_stock_threshold=10)
    order_create(user=superuser, items=[(product.pk, 1)])
    client.force_login(superuser)
    for label in SHOP_APPS:
        for model in apps.get_app_config(label).get_models():
            info = f"{model._meta.app_label}_{model._meta.model_name}"
            changelist = client.get(reverse(f"admin:{info}_changelist"))
            assert changelist.status_code == 200, info
            first = model.objects.first()
            if first is not None:
                change = client.get(reverse(f"admin:{info}_change", args=[first.pk]))
                assert change.status_code == 200, info


def test_customers_cannot_open_the_admin(client, customer):
    client.force_login(customer)
    response = client.get(reverse("admin:catalog_product_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
