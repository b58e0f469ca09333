"""Fixtures for the shop's tests: users with tokens, API clients, a small catalog, signals."""

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from shop import signals
from shop.catalog.models import Category, Product

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def customer(db) -> User:
    return User.objects.create_user("cyrus", "cyrus@example.com", PASSWORD)


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("darius", "darius@example.com", PASSWORD, is_staff=True)


def _client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer_client(customer) -> APIClient:
    return _client_for(customer)


@pytest.fixture
def staff_client(staff) -> APIClient:
    return _client_for(staff)


@pytest.fixture
def category(db) -> Category:
    return Category.objects.create(name="Posters", slug="posters")


@pytest.fixture
def make_product(category) -> Callable[..., Product]:
    counter = iter(range(1, 10_000))

    def make(**fields) -> Product:
        n = next(counter)
        defaults = {
            "sku": f"PP-TEST-{n:03d}",
            "name": f"Test print {n}",
            "category": category,
            "price": Decimal("12.50"),
            "stock_quantity": 100,
            "low_stock_threshold": 10,
        }
        defaults.update(fields)
        return Product.objects.create(**defaults)

    return make


class SignalRecorder:
    """Connects to the shop's signals and keeps what each one was sent with."""

    NAMES = [
        "user_registered",
        "login_attempted",
        "order_placed",
        "order_completed",
        "order_failed",
        "payment_finished",
        "reorder_alert_raised",
        "order_reservation_expired",
    ]

    def __init__(self) -> None:
        self.sent: dict[str, list[dict]] = {name: [] for name in self.NAMES}
        self._receivers = {}
        for name in self.NAMES:

            def receiver(sender, _name=name, **kwargs):
                kwargs.pop("signal", None)
                self.sent[_name].append(kwargs)

            self._receivers[name] = receiver
            getattr(signals, name).connect(receiver, weak=False)

    def disconnect(self) -> None:
        for name, receiver in self._receivers.items():
            getattr(signals, name).disconnect(receiver)


@pytest.fixture
def sent_signals():
    recorder = SignalRecorder()
    yield recorder.sent
    recorder.disconnect()
