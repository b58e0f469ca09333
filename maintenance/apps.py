from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"
    label = "maintenance"
    verbose_name = "Maintenance: mode, backups, database upkeep"
