from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    label = "monitoring"

    def ready(self) -> None:
        # Collectors register here, once per process (see monitoring/collectors/).
        from monitoring.logging import db_errors

        db_errors.connect()
