from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "shop.outbox"
    label = "outbox"
