"""Celery: queue lengths from the Redis broker, workers online, and per-task outcomes, runtimes
and queue waits from Celery's signals (counted in whichever process runs the task)."""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import Celery, signals

from monitoring.collectors import instruments
from monitoring.collectors.base import CachedReading, Collector, Families, Reading
from monitoring.metrics import start_at_zero

# kombu's Redis transport keeps priority messages in "<queue>\x06\x16<step>" lists.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
PUBLISHED_AT_HEADER = "published_at"


def is_internal_queue(name: str) -> bool:
    """Celery's own per-process queues: remote control (`<host>.celery.pidbox`), replies, and
    event receivers (`celeryev.<uuid>`, one per monitoring consumer). They are not work queues,
    and their names change with every process, so as labels they would grow without bound."""
    return name.endswith(".pidbox") or "reply.celery" in name or name.startswith("celeryev.")


def celery_queue_names(*, app: Celery, client: redis.Redis) -> list[str]:
    """Configured queues plus every work queue bound in the broker (kombu's binding sets)."""
    names = {app.conf.task_default_queue}
    names.update(queue.name for queue in app.conf.task_queues or ())
    for key in client.scan_iter(match="_kombu.binding.*", count=100):
        for member in client.smembers(key):
            queue = member.decode().split(PRIORITY_SEPARATOR)[-1]
            if queue and not is_internal_queue(queue):
                names.add(queue)
    return sorted(names)


def celery_queue_lengths(*, client: redis.Redis, queues: list[str]) -> dict[str, int]:
    """Messages waiting per queue, summing the priority-suffixed lists (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
        for step in PRIORITY_STEPS:
            pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{step}")
    sizes = pipe.execute()
    per_queue = len(PRIORITY_STEPS) + 1
    return {
        queue: sum(sizes[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)
    }


def celery_workers_answering(*, app: Celery, timeout: float) -> dict[str, list[str]]:
    """Workers that answer a broadcast within `timeout`, with the queues each consumes."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    with app.connection_for_write(transport_options=options, connect_timeout=timeout) as conn:
        replies = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
    return {worker: sorted(q["name"] for q in queues) for worker, queues in replies.items()}


class CeleryCollector(Collector):
    name = "celery"

    def __init__(
        self,
        *,
        app: Celery,
        client: redis.Redis,
        workers_interval: float = 30.0,
        workers_timeout: float = 1.0,
        budget: float = 0.2,
    ) -> None:
        self.app = app
        self.client = client
        self.workers_timeout = workers_timeout
        # A broadcast waits its whole timeout for replies: cache it, never wait on it per scrape.
        self._workers = CachedReading(
            self._read_workers, interval=workers_interval, budget=budget, name="celery-workers"
        )

    def _read_workers(self) -> Reading:
        workers = celery_workers_answering(app=self.app, timeout=self.workers_timeout)
        return {"workers": workers}

    def read(self) -> Reading:
        try:
            queues = celery_queue_names(app=self.app, client=self.client)
            lengths: dict[str, int] | None = celery_queue_lengths(client=self.client, queues=queues)
        except redis.RedisError:
            lengths = None
        workers = self._workers.get()
        online = None if workers is None else len(workers["workers"])
        return {
            "broker_up": lengths is not None,
            "queue_length": lengths,
            "workers_online": online,
            "workers": None if workers is None else workers["workers"],
            "unavailable": [
                key
                for key, value in (("queue_length", lengths), ("workers_online", online))
                if value is None
            ],
        }

    def families(self, reading: Reading) -> Families:
        return families_from_reading(reading)


def families_from_reading(reading: Reading) -> Families:
    families = Families()
    families.gauge(
        "celery_broker_up", "1 if the broker answered at this scrape.", int(reading["broker_up"])
    )
    for queue, length in (reading["queue_length"] or {}).items():
        families.gauge(
            "celery_queue_length", "Messages waiting in a Celery queue.", length, queue=queue
        )
    families.gauge(
        "celery_workers_online",
        "Celery workers that answered the last broadcast.",
        reading["workers_online"],
    )
    return families


# --- task signals: connected once in MonitoringConfig.ready(), in web and worker processes ---


def _stamp_publish_time(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


def _task_started(task: Any = None, **_: Any) -> None:
    if task is None:
        return
    request = task.request
    request.monitoring_started_at = time.perf_counter()
    published_at = getattr(request, PUBLISHED_AT_HEADER, None)
    if isinstance(published_at, int | float):
        wait = max(0.0, time.time() - published_at)
        instruments.celery_task_queue_wait_seconds.labels(task.name).observe(wait)


_STATES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}


def start_task_outcomes_at_zero(app: Celery) -> None:
    """Every task the app knows (Celery's own `celery.*` aside), every outcome, at 0: the
    first failure after a worker starts is an increase, not the birth of a series."""
    names = sorted(name for name in app.tasks if not name.startswith("celery."))
    start_at_zero(
        instruments.celery_tasks_total,
        [(name, outcome) for name in names for outcome in _STATES.values()],
    )


def _worker_starting(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is not None:
        start_task_outcomes_at_zero(app)


def _task_finished(task: Any = None, state: str | None = None, **_: Any) -> None:
    if task is None:
        return
    started = getattr(task.request, "monitoring_started_at", None)
    if started is not None:
        runtime = time.perf_counter() - started
        instruments.celery_task_runtime_seconds.labels(task.name).observe(runtime)
    outcome = _STATES.get(state or "")
    if outcome is not None:
        instruments.celery_tasks_total.labels(task.name, outcome).inc()


def connect_task_signals() -> None:
    signals.worker_init.connect(_worker_starting, dispatch_uid="monitoring-worker-init")
    signals.before_task_publish.connect(_stamp_publish_time, dispatch_uid="monitoring-publish")
    signals.task_prerun.connect(_task_started, dispatch_uid="monitoring-prerun")
    signals.task_postrun.connect(_task_finished, dispatch_uid="monitoring-postrun")
