import pytest
from django.core.management import call_command

from monitoring.thresholds import threshold
from shop.catalog.demo import PRODUCTS
from shop.catalog.models import Category, Product
from shop.catalog.selectors import product_list

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_demo_catalog_loads_once_and_keeps_sold_stock(capsys):
    call_command("load_demo_catalog")
    assert "20 products created, 0 updated" in capsys.readouterr().out
    assert Product.objects.count() == len(PRODUCTS) == 20
    assert Category.objects.count() == 6
    # A fresh shop raises no LowStock alert: above its own level and the alert's (thresholds.yml).
    assert list(product_list(low_stock=True)) == []
    lowest = min(stock for *_, stock, _threshold in PRODUCTS)
    assert lowest > threshold("business", "low_stock_threshold")
    Product.objects.filter(sku="CNV-30x40").update(stock_quantity=3)

    call_command("load_demo_catalog")
    assert "0 products created, 20 updated" in capsys.readouterr().out
    assert Product.objects.count() == 20
    assert Product.objects.get(sku="CNV-30x40").stock_quantity == 3
    for product in Product.objects.all():
        product.full_clean()  # every demo row is a valid product
