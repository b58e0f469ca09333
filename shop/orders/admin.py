from django.contrib import admin

from shop.orders.models import Order, OrderItem


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    readonly_fields = ["product", "quantity", "unit_price", "line_total"]
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "user", "status", "total", "currency", "created_at", "paid_at"]
    list_filter = ["status"]
    search_fields = ["number", "user__username", "user__email"]
    date_hierarchy = "created_at"
    # Totals and statuses change only through the services (stock, payments, signals).
    readonly_fields = ["number", "user", "status", "total", "currency", "paid_at"]
    inlines = [OrderItemInline]


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin):
    list_display = ["order", "product", "quantity", "unit_price", "line_total"]
    list_select_related = ["order", "product"]
    readonly_fields = ["order", "product", "quantity", "unit_price", "line_total"]
