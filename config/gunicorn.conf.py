"""gunicorn settings: `gunicorn -c config/gunicorn.conf.py config.wsgi`.

Environment: WEB_CONCURRENCY (workers, default 4), GUNICORN_THREADS (threads per worker,
default 4), BIND (default 127.0.0.1:8000), PROMETHEUS_MULTIPROC_DIR (default $VAR_DIR/metrics),
GUNICORN_TIMEOUT (seconds, default 30).

Threads (gthread workers): a request that waits (a slow database, a dependency at its timeout)
holds one thread, not the whole worker, so the health probe and the metrics scrape are still
answered at once; the public health probe has threads of its own (config/gunicorn_worker.py),
so it never waits for a pool thread either (issue 11's drill measures its p99 in a burst).

Metrics: this file runs in the master before any worker imports the app, so setting
PROMETHEUS_MULTIPROC_DIR here puts every worker's prometheus_client in multiprocess mode
(see monitoring/metrics.py). At start the master drops files of processes that no longer run;
when a worker exits its live-only gauge files go (its counters stay, so nothing is lost).
gunicorn's own access log is off: the request middleware writes a structured one.

APM (monitoring/apm): no preload_app, so each worker loads the app, and sets up Sentry and
OpenTelemetry (their export threads and sockets), after its fork, never in the master.
"""

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(os.environ.get("VAR_DIR", str(_ROOT / "var"))) / "metrics"),
)

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "config.gunicorn_worker.ProbeFirstWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = None
errorlog = "-"
wsgi_app = "config.wsgi:application"


def _logconfig_dict() -> dict:
    # The master logs JSON lines through the app's LOGGING, like its workers (issue 4).
    import importlib

    from monitoring.logging.config import gunicorn_logconfig

    module = os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    return gunicorn_logconfig(importlib.import_module(module).LOGGING)


logconfig_dict = _logconfig_dict()


def on_starting(server) -> None:
    from monitoring.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker) -> None:
    from monitoring.metrics import mark_process_dead

    mark_process_dead(worker.pid)
