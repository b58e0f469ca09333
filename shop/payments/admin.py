from django.contrib import admin

from shop.payments.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["order", "provider", "amount", "currency", "status", "error_code", "created_at"]
    list_filter = ["status", "provider", "error_code"]
    search_fields = ["order__number", "provider_reference"]
    list_select_related = ["order"]
    readonly_fields = [
        "order",
        "provider",
        "amount",
        "currency",
        "status",
        "error_code",
        "provider_reference",
        "card_last4",
        "captured_at",
    ]
