from django.db.models import F, QuerySet

from shop.catalog.models import Category, Product


def category_list() -> QuerySet[Category]:
    return Category.objects.all()


def product_list(
    *, include_inactive: bool = False, category: str | None = None, low_stock: bool = False
) -> QuerySet[Product]:
    """Products in SKU order; the public sees active ones only. `category` is a slug;
    `low_stock` keeps those at or below their reorder threshold."""
    products = Product.objects.select_related("category")
    if not include_inactive:
        products = products.filter(is_active=True)
    if category:
        products = products.filter(category__slug=category)
    if low_stock:
        products = products.filter(stock_quantity__lte=F("low_stock_threshold"))
    return products
