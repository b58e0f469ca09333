"""The shop's REST API, mounted at /api/."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("shop.accounts.urls")),
    path("catalog/", include("shop.catalog.urls")),
    path("orders/", include("shop.orders.urls")),
    path("payments/", include("shop.payments.urls")),
]
