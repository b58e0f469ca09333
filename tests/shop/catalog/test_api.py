import pytest

from shop.catalog.models import Category, Product

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_public_lists_active_products_and_filters_by_category(anon_client, make_product):
    cards = Category.objects.create(name="Business cards", slug="business-cards")
    poster = make_product(sku="PST-A2-001")
    make_product(sku="PST-A2-OLD", is_active=False)
    card = make_product(sku="BC-STD-500", category=cards, stock_quantity=3)

    listed = anon_client.get("/api/catalog/products/").json()
    assert [p["sku"] for p in listed["results"]] == ["BC-STD-500", "PST-A2-001"]
    assert listed["count"] == 2
    by_category = anon_client.get("/api/catalog/products/", {"category": "business-cards"}).json()
    assert [p["id"] for p in by_category["results"]] == [card.pk]
    low = anon_client.get("/api/catalog/products/", {"low_stock": "true"}).json()
    assert [p["sku"] for p in low["results"]] == ["BC-STD-500"]
    detail = anon_client.get(f"/api/catalog/products/{poster.pk}/").json()
    assert detail["price"] == "12.50" and detail["category"] == "posters"
    assert detail["is_low_stock"] is False
    assert anon_client.get(f"/api/catalog/products/{card.pk}/").json()["is_low_stock"] is True


def test_inactive_product_is_hidden_from_public_but_not_from_staff(
    anon_client, staff_client, make_product
):
    hidden = make_product(is_active=False)
    assert anon_client.get(f"/api/catalog/products/{hidden.pk}/").status_code == 404
    assert staff_client.get(f"/api/catalog/products/{hidden.pk}/").status_code == 200


def test_staff_creates_and_updates_products(staff_client, category):
    body = {
        "sku": "FLY-A5-250",
        "name": "A5 flyers, 250",
        "category": "posters",
        "price": "39.00",
        "stock_quantity": 40,
        "low_stock_threshold": 5,
    }
    created = staff_client.post("/api/catalog/products/", body, format="json")
    assert created.status_code == 201, created.content
    product = Product.objects.get(sku="FLY-A5-250")
    changed = staff_client.patch(
        f"/api/catalog/products/{product.pk}/", {"stock_quantity": 2}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["is_low_stock"] is True
    product.refresh_from_db()
    assert product.stock_quantity == 2
    duplicate = staff_client.post("/api/catalog/products/", body, format="json")
    assert duplicate.status_code == 400 and "sku" in duplicate.json()


def test_staff_creates_categories_customers_cannot(staff_client, customer_client, anon_client):
    body = {"name": "Stickers", "slug": "stickers"}
    assert customer_client.post("/api/catalog/categories/", body, format="json").status_code == 403
    assert anon_client.post("/api/catalog/categories/", body, format="json").status_code in (
        401,
        403,
    )
    assert staff_client.post("/api/catalog/categories/", body, format="json").status_code == 201
    assert anon_client.get("/api/catalog/categories/").json()["results"] == [
        {"id": Category.objects.get().pk, "name": "Stickers", "slug": "stickers"}
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "-1.00"}, "price"),
        ({"price": "1e30"}, "price"),
        ({"stock_quantity": -5}, "stock_quantity"),
        ({"stock_quantity": 10**20}, "stock_quantity"),
        ({"category": "no-such-category"}, "category"),
    ],
)
def test_product_writes_refuse_bad_values(staff_client, make_product, change, field):
    product = make_product()
    response = staff_client.patch(f"/api/catalog/products/{product.pk}/", change, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_unknown_and_huge_ids_answer_404(anon_client):
    assert anon_client.get("/api/catalog/products/999999/").status_code == 404
    assert anon_client.get(f"/api/catalog/products/{10**30}/").status_code == 404
    assert anon_client.get("/api/catalog/products/", {"offset": 10**30}).status_code == 200
