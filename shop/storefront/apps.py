from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "shop.storefront"
    label = "storefront"
