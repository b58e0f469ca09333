"""Catalog writes and stock bookkeeping.

Stock is reserved with one conditional UPDATE per product (`stock_quantity >= qty`), so two
orders can never both take the last unit: on PostgreSQL the second UPDATE waits for the first
row lock and re-checks the condition; on SQLite the IMMEDIATE transaction serialises writers.
Products are always touched in ascending id order, so concurrent orders cannot deadlock.
"""

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from shop import signals
from shop.catalog.models import MAX_STOCK, Category, Product, ReorderAlert
from shop.errors import Conflict, InvalidRequest, NotFound


def category_create(*, name: str, slug: str) -> Category:
    return _save(Category(name=name, slug=slug))


def category_update(*, category: Category, data: Mapping[str, Any]) -> Category:
    for field, value in data.items():
        setattr(category, field, value)
    return _save(category)


def product_create(*, data: Mapping[str, Any]) -> Product:
    return _save(Product(**data))


def product_update(*, product: Product, data: Mapping[str, Any]) -> Product:
    for field, value in data.items():
        setattr(product, field, value)
    return _save(product)


def _save(instance: Category | Product) -> Any:
    # full_clean reports duplicates as a 400 with the field; the IntegrityError catches the
    # race where two requests pass that check at once.
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise Conflict("That name, slug or SKU is already taken.", code="duplicate") from None
    return instance


def stock_reserve(*, quantities: Mapping[int, int]) -> dict[int, Product]:
    """Take `quantities` ({product id: units}) out of stock, all or nothing.

    Must run inside the caller's transaction: a shortage raises and rolls back the units
    already taken. Returns the locked, updated products by id.
    """
    assert transaction.get_connection().in_atomic_block, "stock_reserve needs a transaction"
    for product_id in sorted(quantities):
        quantity = quantities[product_id]
        taken = Product.objects.filter(
            pk=product_id, is_active=True, stock_quantity__gte=quantity
        ).update(stock_quantity=F("stock_quantity") - quantity)
        if not taken:
            _raise_unavailable(product_id=product_id, quantity=quantity)
    products = Product.objects.in_bulk(sorted(quantities))
    for product_id, product in products.items():
        _reorder_alert_check(
            product=product, before=product.stock_quantity + quantities[product_id]
        )
    return products


def stock_receive(*, product_id: int, quantity: int) -> Product:
    """Book `quantity` units of a delivery into stock (staff restocking a product).

    An increment, not a new absolute level: orders placed while the delivery is counted keep
    their reservations (setting `stock_quantity` outright would silently undo them). Stock
    never goes above MAX_STOCK, the level the API accepts (what staff read, they can write).
    """
    if quantity <= 0:
        raise InvalidRequest("A delivery adds at least one unit.", code="invalid_quantity")
    with transaction.atomic():
        updated = Product.objects.filter(
            pk=product_id, stock_quantity__lte=MAX_STOCK - quantity
        ).update(stock_quantity=F("stock_quantity") + quantity)
        product = Product.objects.select_related("category").filter(pk=product_id).first()
        if product is None:
            raise NotFound(f"Product {product_id} does not exist.")
        if not updated:
            raise Conflict(
                f"{product.sku} holds {product.stock_quantity} units: {quantity} more would "
                f"exceed the limit of {MAX_STOCK}.",
                code="stock_limit",
            )
        return product


def stock_release(*, quantities: Mapping[int, int]) -> None:
    """Put units back (a cancelled or failed order)."""
    for product_id in sorted(quantities):
        Product.objects.filter(pk=product_id).update(
            stock_quantity=F("stock_quantity") + quantities[product_id]
        )


def _raise_unavailable(*, product_id: int, quantity: int) -> None:
    product = Product.objects.filter(pk=product_id).first()
    if product is None or not product.is_active:
        raise InvalidRequest(f"Product {product_id} does not exist.", code="unknown_product")
    raise Conflict(
        f"Not enough stock for {product.sku}: {quantity} requested, "
        f"{product.stock_quantity} available.",
        code="insufficient_stock",
    )


def _reorder_alert_check(*, product: Product, before: int) -> None:
    """Raise one alert when stock crosses the threshold (above it before, at or below after)."""
    threshold = product.low_stock_threshold
    if not (before > threshold >= product.stock_quantity):
        return
    alert = ReorderAlert.objects.create(product=product, stock_quantity=product.stock_quantity)
    from shop.catalog.tasks import reorder_notice_send
    from shop.outbox.services import enqueue

    enqueue(reorder_notice_send, alert.pk, key=f"reorder_notice_send:{alert.pk}")

    def announce() -> None:
        signals.reorder_alert_raised.send(
            sender=Product, product=product, stock_quantity=product.stock_quantity
        )

    transaction.on_commit(announce)
