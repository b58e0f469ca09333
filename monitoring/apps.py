from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    label = "monitoring"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        import monitoring.http.metrics  # noqa: F401  (declares the HTTP metrics in every process)
        from monitoring.collectors import register_collectors
        from monitoring.collectors.celery import connect_task_signals
        from monitoring.collectors.database import install_query_timer
        from monitoring.http.application import connect_receivers
        from monitoring.logging import db_errors

        connect_receivers()
        db_errors.connect()
        # Every query timed, every Celery task counted (web and worker processes alike).
        connection_created.connect(install_query_timer, dispatch_uid="monitoring-query-timer")
        connect_task_signals()
        # Outbox jobs keep the request id and user id of the request that caused them.
        from monitoring.logging.celery_context import context_headers
        from shop.outbox.services import CONTEXT_PROVIDERS

        if context_headers not in CONTEXT_PROVIDERS:
            CONTEXT_PROVIDERS.append(context_headers)
        # Collectors register once per process, with monitoring.metrics' registry.
        register_collectors()
        # APM (Sentry, OpenTelemetry) when configured; a prefork Celery worker's pool processes
        # set up after their fork instead (monitoring/apm/process.py).
        from monitoring.apm import enabled

        if enabled():
            from monitoring.apm.process import setup_now_or_after_fork

            setup_now_or_after_fork()
