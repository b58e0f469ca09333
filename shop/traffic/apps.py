from django.apps import AppConfig


class TrafficConfig(AppConfig):
    """The traffic simulator (a management command); no models."""

    name = "shop.traffic"
    label = "traffic"
