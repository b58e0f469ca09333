"""Business: revenue, conversion, best sellers, completion rate, stock and reorder alerts.

Read from the shop's models, cached for an interval and time-limited (see CachedReading), so a
scrape never waits on a slow query past its budget.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, DateTimeField, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from redis.exceptions import RedisError

from monitoring.collectors.base import (
    CachedCollector,
    Families,
    Reading,
    cached_statistics,
    statement_deadline,
    unavailable_keys,
)
from shop.catalog.models import Product, ReorderAlert
from shop.orders.models import Order, OrderItem
from shop.visits.services import visitors_on

PAID_STATUSES = (
    Order.Status.PAID,
    Order.Status.PROCESSING,
    Order.Status.SHIPPED,
    Order.Status.DELIVERED,
)
FINISHED_STATUSES = (Order.Status.DELIVERED, Order.Status.CANCELLED, Order.Status.FAILED)
TOP_PRODUCTS = 10
WINDOW_DAYS = 30


def _period_starts(now: datetime) -> dict[str, datetime]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": today,
        "week": today - timedelta(days=today.weekday()),  # since Monday
        "month": today.replace(day=1),
    }


def _money(value: Decimal | None) -> float:
    return float(value or 0)


def business_revenue(*, now: datetime) -> dict[str, dict[str, float]]:
    """Paid revenue per period and currency; an order counts when it was paid."""
    starts = _period_starts(now)
    paid = Order.objects.filter(status__in=PAID_STATUSES).annotate(
        paid_on=Coalesce("paid_at", "created_at", output_field=DateTimeField())
    )
    rows = (
        paid.filter(paid_on__gte=min(starts.values()))
        .values("currency")
        .annotate(
            **{
                period: Sum("total", filter=Q(paid_on__gte=start), default=0)
                for period, start in starts.items()
            }
        )
    )
    revenue: dict[str, dict[str, float]] = {period: {} for period in starts}
    for row in rows:
        for period in starts:
            revenue[period][row["currency"]] = _money(row[period])
    return revenue


def business_conversion(*, now: datetime) -> dict[str, float | int | None]:
    """Paid orders placed today per unique visitor today, in percent (None without visitors,
    and both None while the visitor count cannot be read: Redis down)."""
    start = _period_starts(now)["today"]
    try:
        visitors = visitors_on(day=start.date())
    except (RedisError, OSError):  # the HyperLogLog's Redis: unavailable, not zero
        visitors = None
    orders = Order.objects.filter(created_at__gte=start, status__in=PAID_STATUSES).count()
    rate = round(100.0 * orders / visitors, 3) if visitors else None
    return {"visitors_today": visitors, "orders_today": orders, "conversion_rate_percent": rate}


def business_top_products(*, now: datetime) -> list[dict]:
    since = now - timedelta(days=WINDOW_DAYS)
    rows = (
        OrderItem.objects.filter(order__status__in=PAID_STATUSES, order__created_at__gte=since)
        .values("product__sku")
        .annotate(units=Sum("quantity"), revenue=Sum("line_total"))
        .order_by("-units", "product__sku")[:TOP_PRODUCTS]
    )
    return [
        {
            "rank": i + 1,
            "sku": r["product__sku"],
            "units_sold": r["units"],
            "revenue": _money(r["revenue"]),
        }
        for i, r in enumerate(rows)
    ]


def business_completion(*, now: datetime) -> dict[str, float | int | None]:
    """Delivered orders among the orders that finished (delivered, cancelled, failed)."""
    since = now - timedelta(days=WINDOW_DAYS)
    counts = Order.objects.filter(created_at__gte=since, status__in=FINISHED_STATUSES).aggregate(
        finished=Count("id"), delivered=Count("id", filter=Q(status=Order.Status.DELIVERED))
    )
    rate = (
        round(100.0 * counts["delivered"] / counts["finished"], 3) if counts["finished"] else None
    )
    return {"orders_finished_30d": counts["finished"], "order_completion_rate_percent": rate}


def business_stock() -> dict:
    products = list(
        Product.objects.filter(is_active=True).values_list(
            "sku", "stock_quantity", "low_stock_threshold"
        )
    )
    return {
        "stock_quantity": {sku: qty for sku, qty, _ in products},
        "low_stock_products": sum(1 for _, qty, low in products if 0 < qty <= low),
        "out_of_stock_products": sum(1 for _, qty, _ in products if qty == 0),
    }


def business_reorder_alerts(*, now: datetime) -> dict[str, int]:
    return ReorderAlert.objects.aggregate(
        reorder_alerts_total=Count("id"),
        reorder_alerts_today=Count("id", filter=Q(created_at__gte=_period_starts(now)["today"])),
        reorder_alerts_unnotified=Count("id", filter=Q(notified_at__isnull=True)),
    )


def business_statistics(*, alias: str, timeout: float, now: datetime | None = None) -> Reading:
    now = now or timezone.now()
    with statement_deadline(alias, timeout):
        conversion = business_conversion(now=now)
        completion = business_completion(now=now)
        reading = {
            "revenue": business_revenue(now=now),
            **conversion,
            **completion,
            "top_products_30d": business_top_products(now=now),
            **business_stock(),
            **business_reorder_alerts(now=now),
        }
    rates = {
        "conversion_rate_percent": conversion["conversion_rate_percent"],
        "order_completion_rate_percent": completion["order_completion_rate_percent"],
    }
    return {**reading, "unavailable": unavailable_keys(rates)}


class BusinessCollector(CachedCollector):
    name = "business"

    def __init__(
        self,
        *,
        alias: str = "default",
        interval: float = 60.0,
        budget: float = 1.0,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        super().__init__(
            cached_statistics(
                lambda **kw: business_statistics(now=clock(), **kw),
                alias=alias,
                interval=interval,
                budget=budget,
                name=self.name,
            )
        )

    def families(self, reading: Reading) -> Families:
        return families_from_reading(reading)


def families_from_reading(reading: Reading) -> Families:
    families = Families()
    for period, by_currency in reading["revenue"].items():
        for currency, amount in by_currency.items():
            families.gauge(
                "business_revenue",
                "Revenue of paid orders since the start of the period (UTC; week from Monday).",
                amount,
                period=period,
                currency=currency,
            )
    families.gauge(
        "business_unique_visitors_today", "Unique visitors today.", reading["visitors_today"]
    )
    families.gauge(
        "business_paid_orders_today", "Orders placed and paid today.", reading["orders_today"]
    )
    families.gauge(
        "business_conversion_rate_percent",
        "Paid orders today per unique visitor today.",
        reading["conversion_rate_percent"],
    )
    families.gauge(
        "business_order_completion_rate_percent",
        "Delivered among finished (delivered, cancelled, failed) orders of the last 30 days.",
        reading["order_completion_rate_percent"],
    )
    for product in reading["top_products_30d"]:
        families.gauge(
            "business_top_product_units_sold",
            "Units sold in paid orders of the last 30 days, top 10 products.",
            product["units_sold"],
            rank=str(product["rank"]),
            sku=product["sku"],
        )
    for sku, quantity in reading["stock_quantity"].items():
        families.gauge(
            "product_stock_quantity", "Units in stock per active product.", quantity, sku=sku
        )
    families.gauge(
        "business_low_stock_products",
        "Active products at or below their low-stock threshold (but not out).",
        reading["low_stock_products"],
    )
    families.gauge(
        "business_out_of_stock_products",
        "Active products with no stock.",
        reading["out_of_stock_products"],
    )
    families.counter(
        "business_reorder_alerts_total", "Reorder alerts raised.", reading["reorder_alerts_total"]
    )
    families.gauge(
        "business_reorder_alerts_today",
        "Reorder alerts raised today.",
        reading["reorder_alerts_today"],
    )
    families.gauge(
        "business_reorder_alerts_unnotified",
        "Reorder alerts nobody has been notified of yet.",
        reading["reorder_alerts_unnotified"],
    )
    return families
