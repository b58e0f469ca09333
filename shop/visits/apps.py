from django.apps import AppConfig


class VisitsConfig(AppConfig):
    name = "shop.visits"
    label = "visits"
