"""The cart: product id -> quantity in the session (no database row until checkout)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest

from shop.catalog.models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 1000  # as the order API's limit per line
MAX_LINES = 50


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


def cart_items(request: HttpRequest) -> dict[int, int]:
    raw = request.session.get(SESSION_KEY) or {}
    return {int(k): int(v) for k, v in raw.items()}


def cart_set(*, request: HttpRequest, product_id: int, quantity: int) -> None:
    """Set a line's quantity (0 removes it); bounded as the order API bounds an order."""
    items = cart_items(request)
    quantity = max(0, min(quantity, MAX_QUANTITY))
    if quantity == 0:
        items.pop(product_id, None)
    elif product_id in items or len(items) < MAX_LINES:
        items[product_id] = quantity
    request.session[SESSION_KEY] = {str(k): v for k, v in items.items()}


def cart_add(*, request: HttpRequest, product_id: int, quantity: int) -> None:
    cart_set(
        request=request,
        product_id=product_id,
        quantity=cart_items(request).get(product_id, 0) + quantity,
    )


def cart_clear(*, request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def cart_lines(request: HttpRequest) -> list[CartLine]:
    """The cart's lines for products still on sale (a withdrawn product drops out)."""
    items = cart_items(request)
    products = Product.objects.filter(pk__in=items, is_active=True).order_by("name")
    return [CartLine(product=p, quantity=items[p.pk]) for p in products]
