import pytest
from django.core.management import call_command

from shop.catalog.demo import PRODUCTS
from shop.catalog.models import Category, Product
from shop.catalog.selectors import product_list

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_demo_catalog_loads_once_and_keeps_sold_stock(capsys):
    call_command("load_demo_catalog")
    assert "20 products created, 0 updated" in capsys.readouterr().out
    assert Product.objects.count() == len(PRODUCTS) == 20
    assert Category.objects.count() == 6
    low = {p.sku for p in product_list(low_stock=True)}
    assert low == {"PST-A2-GICLEE", "BC-FOIL-100"}
    Product.objects.filter(sku="CNV-30x40").update(stock_quantity=3)

    call_command("load_demo_catalog")
    assert "0 products created, 20 updated" in capsys.readouterr().out
    assert Product.objects.count() == 20
    assert Product.objects.get(sku="CNV-30x40").stock_quantity == 3
    for product in Product.objects.all():
        product.full_clean()  # every demo row is a valid product
