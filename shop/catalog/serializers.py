from decimal import Decimal

from django.core.validators import slug_re
from rest_framework import serializers

from shop.catalog.models import MAX_STOCK, Category, Product


class CategorySlugField(serializers.SlugRelatedField):
    """A category by slug; text no slug can contain is refused before any database lookup."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not slug_re.match(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value="(not a slug)")
        return super().to_internal_value(data)


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name", "slug"]


class ProductSerializer(serializers.ModelSerializer):
    category = CategorySlugField(slug_field="slug", queryset=Category.objects.all())
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0.01"))
    stock_quantity = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False)
    low_stock_threshold = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False)
    is_low_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "description",
            "category",
            "price",
            "stock_quantity",
            "low_stock_threshold",
            "is_low_stock",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class StockReceiptSerializer(serializers.Serializer):
    """A delivery booked into stock: how many units arrived."""

    quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK)
