from django.db.models import QuerySet

from shop.catalog.models import Category, Product


def category_list() -> QuerySet[Category]:
    return Category.objects.all()


def product_list(
    *, include_inactive: bool = False, category: str | None = None
) -> QuerySet[Product]:
    """Products in SKU order; the public sees active ones only. `category` is a slug."""
    products = Product.objects.select_related("category")
    if not include_inactive:
        products = products.filter(is_active=True)
    if category:
        products = products.filter(category__slug=category)
    return products


def product_low_stock_list() -> QuerySet[Product]:
    from django.db.models import F

    return Product.objects.filter(is_active=True, stock_quantity__lte=F("low_stock_threshold"))
