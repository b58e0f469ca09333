from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "monitoring.monitor"
    label = "monitor"
