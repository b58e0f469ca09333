import os
import sys

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

if "worker" in sys.argv[1:]:
    # A Celery worker writes its metrics beside gunicorn's, so the web app's Prometheus
    # endpoint exports task counters too. Must be set before prometheus_client is imported.
    from config.settings.env import var_dir

    _metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir() / "metrics"))
    os.makedirs(_metrics_dir, exist_ok=True)

# Request id into tasks, JSON logging in the worker (after the metrics directory is chosen).
import monitoring.logging.celery_context  # noqa: E402, F401

app = Celery("pasargad")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _metrics_process_gone(pid=None, **kwargs) -> None:
    from monitoring.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@worker_ready.connect
def _serve_worker_metrics(**kwargs) -> None:
    # A worker on its own host serves its metrics itself (CELERY_METRICS_LISTEN, docs/scale.md);
    # imported here, once Django is set up (the endpoint checks the monitoring token).
    from monitoring.exposition import worker_endpoint

    worker_endpoint.start_from_environment()


@worker_process_init.connect
def _pool_process_started(**kwargs) -> None:
    from monitoring.exposition import worker_endpoint

    worker_endpoint.close_in_pool_process()
