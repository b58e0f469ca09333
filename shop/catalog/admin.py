from django.contrib import admin

from shop.catalog.models import Category, Product, ReorderAlert


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "price", "stock_quantity", "low_stock_threshold"]
    list_filter = ["is_active", "category"]
    search_fields = ["sku", "name"]
    list_editable = ["stock_quantity"]


@admin.register(ReorderAlert)
class ReorderAlertAdmin(admin.ModelAdmin):
    list_display = ["product", "stock_quantity", "created_at", "notified_at"]
    list_select_related = ["product"]
    readonly_fields = ["product", "stock_quantity", "created_at"]
