"""APM: errors to Sentry, traces over OTLP (New Relic, Datadog, any OpenTelemetry collector).

Both are off unless configured (SENTRY_DSN, OTEL_EXPORTER_OTLP_ENDPOINT): off, neither SDK is
imported and nothing is added to a request. See docs/apm.md.

`setup()` runs once per process that serves (MonitoringConfig.ready). A forking server sets up
its children instead of itself, after the fork: exporters own threads and connections, which a
fork does not carry over (gunicorn loads the app in each worker already; a prefork Celery worker
sets up each pool process on `worker_process_init`, see `process.py`).
"""

from __future__ import annotations

import os

_configured_pid: int | None = None


def setup() -> None:
    """Start what is configured in this process; again in a process forked from it is a no-op
    for the parent's state (the SDKs' globals are set once per process)."""
    global _configured_pid
    if _configured_pid == os.getpid():
        return
    _configured_pid = os.getpid()
    from django.conf import settings

    if settings.SENTRY_DSN:
        from monitoring.apm.errors import init_sentry

        init_sentry(
            dsn=settings.SENTRY_DSN,
            environment=settings.ENVIRONMENT,
            release=settings.RELEASE,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        )
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        from monitoring.apm.traces import init_tracing

        init_tracing(
            endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT,
            service_name=settings.OTEL_SERVICE_NAME,
            ratio=settings.OTEL_TRACES_SAMPLER_ARG,
            environment=settings.ENVIRONMENT,
            release=settings.RELEASE,
            excluded_urls=settings.OTEL_EXCLUDED_URLS,
        )


def enabled() -> bool:
    from django.conf import settings

    return bool(settings.SENTRY_DSN or settings.OTEL_EXPORTER_OTLP_ENDPOINT)
