"""Business metrics from the shop's models: revenue, conversion, best sellers, completion,
stock, reorder alerts; cached and time-limited."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry

from monitoring.collectors.base import CachedCollector, CachedReading, Families
from monitoring.collectors.business import (
    BusinessCollector,
    business_revenue,
    business_statistics,
    families_from_reading,
)
from shop.catalog.models import Category, Product, ReorderAlert
from shop.orders.models import Order, OrderItem
from shop.visits.models import Visit
from tests.wait import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.db]

NOW = timezone.now().replace(hour=12)


@pytest.fixture
def shop_data(django_user_model):
    category = Category.objects.create(name="Prints", slug="prints")
    products = {
        sku: Product.objects.create(
            sku=sku, name=sku, category=category, price=Decimal("10.00"), stock_quantity=qty
        )
        for sku, qty in (("P-1", 50), ("P-2", 5), ("P-3", 0))
    }
    Product.objects.create(
        sku="OLD", name="old", category=category, price=1, stock_quantity=0, is_active=False
    )
    orders = [
        # (number, status, total, created/paid when, items)
        ("A", "paid", "30.00", NOW, [("P-1", 3)]),
        ("B", "delivered", "20.00", NOW - timedelta(days=1), [("P-2", 2)]),
        ("C", "pending", "99.00", NOW, [("P-1", 9)]),  # not paid: no revenue
        ("D", "cancelled", "10.00", NOW, [("P-2", 1)]),
        ("E", "failed", "10.00", NOW - timedelta(days=2), [("P-3", 1)]),
        ("F", "shipped", "40.00", NOW - timedelta(days=40), [("P-3", 4)]),  # outside 30 days
    ]
    for number, status, total, when, items in orders:
        order = Order.objects.create(number=number, status=status, total=Decimal(total))
        paid_at = when if status in ("paid", "delivered", "shipped") else None
        Order.objects.filter(pk=order.pk).update(created_at=when, paid_at=paid_at)
        for sku, quantity in items:
            OrderItem.objects.create(
                order=order,
                product=products[sku],
                quantity=quantity,
                unit_price=Decimal("10.00"),
                line_total=Decimal("10.00") * quantity,
            )
    for key in ("v1", "v2", "v3", "v4"):
        Visit.objects.create(day=NOW.date(), visitor_key=key)
    ReorderAlert.objects.create(product=products["P-2"], stock_quantity=5)
    return products


def test_revenue_counts_an_order_in_each_period_it_was_paid_in(db):
    """Each period from its first microsecond: orders paid just before and at the starts of
    today, the week (Monday) and the month, seen from a fixed Wednesday, 16 December."""
    now = timezone.now().replace(2026, 12, 16, 12, 0, 0, 0)
    tick = timedelta(microseconds=1)
    today, monday, first = (
        now.replace(hour=0),
        now.replace(day=14, hour=0),
        now.replace(day=1, hour=0),
    )
    paid = {
        today: "1.00",
        today - tick: "2.00",  # yesterday, this week
        monday: "4.00",
        monday - tick: "8.00",  # last week, this month
        first: "16.00",
        first - tick: "32.00",  # last month
    }
    for number, (when, total) in enumerate(paid.items()):
        order = Order.objects.create(number=f"R-{number}", status="paid", total=Decimal(total))
        Order.objects.filter(pk=order.pk).update(created_at=when, paid_at=when)
    assert business_revenue(now=now) == {
        "today": {"USD": 1.0},
        "week": {"USD": 7.0},
        "month": {"USD": 31.0},
    }


def test_statistics_from_the_shop(shop_data):
    reading = business_statistics(alias="default", timeout=5, now=NOW)
    # A only: B was paid yesterday, C (99) is pending. (The month's bounds: next test.)
    assert reading["revenue"]["today"] == {"USD": 30.0}
    assert 30.0 <= reading["revenue"]["month"]["USD"] <= 90.0  # never the pending order's 99
    # One paid order today over four unique visitors.
    assert reading["orders_today"] == 1
    assert reading["visitors_today"] == 4
    assert reading["conversion_rate_percent"] == 25.0
    # Finished in 30 days: B delivered, D cancelled, E failed.
    assert reading["order_completion_rate_percent"] == pytest.approx(100 / 3, abs=0.01)
    # Best sellers count paid orders of the last 30 days only.
    assert reading["top_products_30d"] == [
        {"rank": 1, "sku": "P-1", "units_sold": 3, "revenue": 30.0},
        {"rank": 2, "sku": "P-2", "units_sold": 2, "revenue": 20.0},
    ]
    assert reading["stock_quantity"] == {"P-1": 50, "P-2": 5, "P-3": 0}
    assert reading["low_stock_products"] == 1
    assert reading["out_of_stock_products"] == 1
    assert reading["reorder_alerts_total"] == 1
    assert reading["reorder_alerts_unnotified"] == 1
    assert reading["unavailable"] == []

    registry = CollectorRegistry()

    class Fixed:
        def collect(self):
            return iter(families_from_reading(reading))

    registry.register(Fixed())
    value = registry.get_sample_value
    assert value("business_revenue", {"period": "today", "currency": "USD"}) == 30.0
    assert value("business_conversion_rate_percent") == 25.0
    assert value("product_stock_quantity", {"sku": "P-3"}) == 0
    assert value("product_stock_quantity", {"sku": "OLD"}) is None
    assert value("business_top_product_units_sold", {"rank": "1", "sku": "P-1"}) == 3
    assert value("business_reorder_alerts_total") == 1


def test_rates_without_visitors_or_finished_orders_are_unavailable_not_zero():
    reading = business_statistics(alias="default", timeout=5, now=NOW)
    assert reading["conversion_rate_percent"] is None
    assert reading["order_completion_rate_percent"] is None
    assert set(reading["unavailable"]) == {
        "conversion_rate_percent",
        "order_completion_rate_percent",
    }
    names = {family.name for family in families_from_reading(reading)}
    assert "business_conversion_rate_percent" not in names
    assert "business_low_stock_products" in names


@pytest.mark.django_db(transaction=True)  # on PostgreSQL the collector reads in its own thread
def test_collector_caches_for_its_interval(shop_data):
    collector = BusinessCollector(alias="default", interval=60, budget=5, clock=lambda: NOW)
    first = collector.snapshot()
    Product.objects.filter(sku="P-1").update(stock_quantity=0)
    assert collector.snapshot() == first  # cached: no new queries within the interval
    assert first["out_of_stock_products"] == 1


def test_a_slow_read_is_served_from_the_last_reading_within_the_budget():
    """The second read hangs until the test lets it go: the caller gets the last reading
    (stale) instead of waiting, and the refresh lands for a later caller."""
    calls = []
    release = threading.Event()

    def slow_read():
        calls.append(1)
        if len(calls) > 1:
            release.wait(60)  # hangs until released: a caller that waited for it would hang too
        return {"value": len(calls)}

    reading = CachedReading(slow_read, interval=0, budget=0.1, name="slow")
    assert reading.get() == {"value": 1}
    stale = reading.get()  # the refresh hangs: the caller gets the last reading at the budget
    assert stale["value"] == 1 and stale["stale"] is True and len(calls) == 2
    release.set()
    wait_for(lambda: reading.get()["value"] >= 2, what="the released refresh")


def test_a_failing_read_keeps_the_error_and_the_last_reading():
    state = {"fail": False}

    def read():
        if state["fail"]:
            raise RuntimeError("server gone")
        return {"value": 1}

    reading = CachedReading(read, interval=0, budget=1, name="flaky", inline=True)
    assert reading.get() == {"value": 1}
    state["fail"] = True
    assert reading.get()["stale"] is True
    assert reading.error == "RuntimeError: server gone"

    class Flaky(CachedCollector):
        name = "flaky"

        def families(self, reading):
            return Families()

    status = {}
    for family in Flaky(reading).collect():
        for sample in family.samples:
            assert sample.labels == {"collector": "flaky"}
            status[sample.name] = sample.value
    assert status["monitoring_collector_up"] == 0
    assert status["monitoring_collector_reading_age_seconds"] >= 0
