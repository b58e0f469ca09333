"""Log lines of real API flows: valid JSON with the required fields, and nothing secret in them.

A failed login, a declined payment with a card number, and a request with a bearer token go
through the shop's real API while our JSON formatter captures every line written.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from shop.catalog.models import Category, Product
from shop.orders.services import order_create
from tests.monitoring.logging.test_counters import sample

pytestmark = [pytest.mark.django_db, pytest.mark.db]

PASSWORD = "s3cret-Pa55word-never-logged"
DECLINED_CARD = "4000000000000002"  # the sandbox gateway's card_declined card (Luhn-valid)
REQUIRED = {"timestamp", "level", "logger", "message", "request_id", "user_id", "environment"}


@pytest.fixture
def customer():
    return User.objects.create_user("roxana", "roxana@example.com", PASSWORD)


@pytest.fixture
def token(customer):
    return Token.objects.create(user=customer)


def check_lines(json_logs, *secrets: str) -> list[dict]:
    for secret in secrets:
        assert secret not in json_logs.text
    lines = json_logs.lines()
    assert lines
    for line in lines:
        assert REQUIRED <= set(line), line
    return lines


def test_failed_login(json_logs, customer):
    response = APIClient().post(
        "/api/accounts/login/",
        {"username": "roxana", "password": PASSWORD + "-wrong"},
        format="json",
        HTTP_X_REQUEST_ID="req-login-1",
    )
    assert response.status_code in (400, 401)
    lines = check_lines(json_logs, PASSWORD)
    assert {line["request_id"] for line in lines} == {"req-login-1"}
    assert any(
        line["logger"] == "access" and line["route"] == "/api/accounts/login/" for line in lines
    )


def test_declined_payment_with_a_card_number(json_logs, customer, token):
    category = Category.objects.create(name="Posters", slug="posters")
    product = Product.objects.create(
        sku="PP-1", name="Poster", category=category, price=Decimal("20.00"), stock_quantity=5
    )
    order = order_create(user=customer, items=[(product.pk, 1)])
    before = sample("payment_errors_total", error_code="card_declined")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(
        "/api/payments/",
        {"order": order.pk, "card_number": DECLINED_CARD, "exp_month": 12, "exp_year": 2099,
         "cvc": "123"},
        format="json",
        HTTP_X_REQUEST_ID="req-pay-1",
    )  # fmt: skip
    assert response.status_code == 402
    lines = check_lines(json_logs, DECLINED_CARD, token.key)
    (failure,) = [line for line in lines if line["logger"] == "payments"]
    assert failure["level"] == "ERROR"
    assert failure["message"] == "Payment processing failed"
    assert failure["error_code"] == "card_declined"
    assert failure["order_id"] == order.number
    assert failure["payment_method"] == "sandbox"
    assert failure["request_id"] == "req-pay-1"
    assert failure["user_id"] == customer.pk
    assert sample("payment_errors_total", error_code="card_declined") == before + 1


def test_request_with_a_bearer_token(json_logs, customer, token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    response = client.get("/api/orders/", HTTP_X_REQUEST_ID="req-bearer-1")
    assert response.status_code in (401, 403)  # DRF token auth wants "Token", not "Bearer"
    lines = check_lines(json_logs, token.key)
    assert {line["request_id"] for line in lines} == {"req-bearer-1"}
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/orders/").status_code == 200
    access = [line for line in check_lines(json_logs, token.key) if line["logger"] == "access"]
    assert access[-1]["user_id"] == customer.pk
