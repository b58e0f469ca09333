"""When to set up APM in a process: now, or in the children a server forks.

- gunicorn (no preload_app) loads the app in each worker, after the fork: now. The master
  never loads the app, so nothing is set up before a fork.
- A Celery worker with the prefork pool loads Django in its main process, which only hands out
  tasks: each pool process sets up on `worker_process_init`. Other pools (solo, threads) run
  tasks in the main process: set up at `worker_init`.
- Anything else (runserver, manage.py, tests): now.
"""

from __future__ import annotations

import sys

from monitoring.apm import setup


def _celery_worker_main() -> bool:
    argv = sys.argv
    return "worker" in argv[1:] and any("celery" in arg for arg in argv[:2])


def setup_now_or_after_fork() -> None:
    if not _celery_worker_main():
        setup()
        return
    from celery import signals

    signals.worker_process_init.connect(_pool_process_ready, dispatch_uid="apm-process-init")
    signals.worker_init.connect(_worker_ready, dispatch_uid="apm-worker-init")


def _pool_process_ready(**kwargs) -> None:
    setup()


def _worker_ready(sender=None, **kwargs) -> None:
    pool = getattr(sender, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    if "prefork" not in str(name):
        setup()
