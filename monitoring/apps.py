from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    label = "monitoring"

    def ready(self) -> None:
        # Collectors register here, once per process (see monitoring/collectors/).
        import monitoring.http.metrics  # noqa: F401  (declares the HTTP metrics in every process)
        from monitoring.http.application import connect_receivers
        from monitoring.logging import db_errors

        connect_receivers()
        db_errors.connect()
