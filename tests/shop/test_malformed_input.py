"""Every endpoint that takes a body answers malformed ones with a 4xx and a reason, never a 500."""

import json
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from shop.orders.services import order_create

pytestmark = [pytest.mark.django_db, pytest.mark.db, pytest.mark.spread]

JSON = "application/json"
HUGE = 10**400


def _operations() -> list[tuple[str, str, dict]]:
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    operations = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method in ("post", "put", "patch"):
                body = operation.get("requestBody", {}).get("content", {}).get(JSON, {})
                operations.append((path, method, body.get("schema", {})))
    return operations


def _field_names(schema: dict) -> list[str]:
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


OPERATIONS = _operations()


def malformed_bodies(fields: list[str]) -> list[tuple[str, bytes, str]]:
    """(label, raw body, content type) pairs that no endpoint should accept."""
    bodies = [
        ("truncated json", b'{"items": [', JSON),
        ("not json", b"hello world", JSON),
        ("invalid utf-8", b'{"name": "\xff\xfe"}', JSON),
        ("json array", b"[1, 2, 3]", JSON),
        ("json string", b'"text"', JSON),
        ("json null", b"null", JSON),
        ("NaN", b'{"quantity": NaN}', JSON),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, JSON),
        ("wrong content type", b"status=paid", "text/plain"),
        ("xml", b"<order><items/></order>", "application/xml"),
    ]
    for label, value in [
        ("nulls", None),
        ("objects", {"$gt": ""}),
        ("lists", [[1], {"a": None}]),
        ("huge numbers", HUGE),
        ("NUL characters", "a\x00b"),
        ("very long strings", "x" * 100_000),
        ("lone surrogate", "\ud800"),
    ]:
        body = {name: value for name in fields} | {"items": [{"product": value, "quantity": value}]}
        raw = json.dumps(body).encode() if value != HUGE else _huge_json(fields)
        bodies.append((label, raw, JSON))
    return bodies


def _huge_json(fields: list[str]) -> bytes:
    parts = [f'"{name}": {HUGE}' for name in fields]
    parts.append(f'"items": [{{"product": {HUGE}, "quantity": {HUGE}}}]')
    return ("{" + ", ".join(parts) + "}").encode()


@pytest.fixture
def path_ids(customer, make_product) -> dict[str, int]:
    product = make_product(price=Decimal("5.00"))
    order = order_create(user=customer, items=[(product.pk, 1)])
    return {"id": product.pk, "category": product.category_id, "order": order.pk}


def _fill(path: str, ids: dict[str, int]) -> str:
    if "{id}" in path:
        key = "order" if path.startswith("/api/orders/") else "id"
        key = "category" if "categories" in path else key
        return path.replace("{id}", str(ids[key]))
    return path


def test_every_body_endpoint_is_covered():
    covered = {(path, method) for path, method, _ in OPERATIONS}
    for expected in [
        ("/api/accounts/register/", "post"),
        ("/api/accounts/login/", "post"),
        ("/api/orders/", "post"),
        ("/api/orders/{id}/status/", "post"),
        ("/api/payments/", "post"),
        ("/api/catalog/products/{id}/", "patch"),
    ]:
        assert expected in covered


@pytest.mark.parametrize(("path", "method", "schema"), OPERATIONS, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("who", ["staff", "customer"])
def test_malformed_bodies_get_4xx_with_reason(
    path, method, schema, who, staff_client, customer_client, path_ids
):
    client: APIClient = staff_client if who == "staff" else customer_client
    url = _fill(path, path_ids)
    for label, raw, content_type in malformed_bodies(_field_names(schema)):
        response = getattr(client, method)(url, data=raw, content_type=content_type)
        if not schema:  # takes no body (logout, cancel): ignoring one is fine, failing is not
            assert response.status_code < 500, (label, url, response.status_code)
            continue
        assert 400 <= response.status_code < 500, (label, url, response.status_code)
        reason = response.json()
        assert reason and isinstance(reason, dict), (label, url, reason)
