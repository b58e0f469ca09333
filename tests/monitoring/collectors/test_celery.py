"""Celery: queue lengths from the Redis broker, task outcomes and runtimes from the signals, and
a real worker answering with its queues (in-process worker on Redis database 2)."""

import os

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from config.celery import app as project_app
from monitoring.collectors import instruments
from monitoring.collectors.celery import (
    PRIORITY_SEPARATOR,
    CeleryCollector,
    celery_queue_lengths,
    celery_queue_names,
    celery_workers_answering,
)
from monitoring.health.checks import CeleryCheck, run_checks
from tests.faults import sample_value
from tests.monitoring.collectors.conftest import REDIS_URL

# Shares Redis database 2 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-2")


@project_app.task(name="tests.monitoring.add")
def add(x, y):
    return x + y


@project_app.task(name="tests.monitoring.boom")
def boom():
    raise ValueError("boom")


@project_app.task(name="tests.monitoring.flaky", bind=True, max_retries=1)
def flaky(self, fail_first):
    if fail_first and self.request.retries == 0:
        raise self.retry(countdown=0)
    return "ok"


def outcomes(task, state):
    return sample_value(
        instruments.celery_tasks_total, "celery_tasks_total", task=task, state=state
    )


def runtimes(task):
    return sample_value(
        instruments.celery_task_runtime_seconds, "celery_task_runtime_seconds_count", task=task
    )


@pytest.mark.redis
def test_queue_lengths_sum_the_priority_lists(redis_db):
    # Queues no worker consumes: a concurrent test run's worker must not drain them.
    redis_db.rpush("lengths-a", "m1", "m2")
    redis_db.rpush(f"lengths-a{PRIORITY_SEPARATOR}6", "m3")
    redis_db.rpush("lengths-b", "m4")
    for queue in ("lengths-a", "lengths-b"):
        redis_db.sadd(f"_kombu.binding.{queue}", f"{queue}{PRIORITY_SEPARATOR * 2}{queue}")
    queues = celery_queue_names(app=project_app, client=redis_db)
    assert {"celery", "lengths-a", "lengths-b"} <= set(queues)
    lengths = celery_queue_lengths(client=redis_db, queues=queues)
    assert (lengths["lengths-a"], lengths["lengths-b"]) == (3, 1)


def test_task_outcomes_and_runtimes_are_counted():
    before = {
        "ok": outcomes("tests.monitoring.add", "succeeded") or 0,
        "failed": outcomes("tests.monitoring.boom", "failed") or 0,
        "retried": outcomes("tests.monitoring.flaky", "retried") or 0,
        "runs": runtimes("tests.monitoring.add") or 0,
    }
    assert add.apply(args=(2, 3)).get() == 5
    assert boom.apply().failed()
    flaky.apply(args=(True,))
    assert outcomes("tests.monitoring.add", "succeeded") == before["ok"] + 1
    assert outcomes("tests.monitoring.boom", "failed") == before["failed"] + 1
    assert outcomes("tests.monitoring.flaky", "retried") == before["retried"] + 1
    assert runtimes("tests.monitoring.add") == before["runs"] + 1


# Queues of this run only: a concurrent run's worker on the same Redis database must not take
# our tasks (nor ours theirs).
QUEUES = [f"health-{os.getpid()}", f"health-{os.getpid()}-reports"]


@pytest.fixture
def worker_app(redis_db):
    """An app on Redis database 2 with an in-process worker consuming two queues."""
    app = Celery("health-tests", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
    app.conf.task_default_queue = QUEUES[0]
    app.conf.worker_hijack_root_logger = False

    @app.task(name="tests.monitoring.worker_add")
    def worker_add(x, y):
        return x + y

    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=QUEUES, loglevel="WARNING"
    ):
        yield app, worker_add


@pytest.mark.redis
@pytest.mark.slow
def test_a_real_worker_answers_and_its_tasks_are_timed_from_publish(worker_app, redis_db):
    app, worker_add = worker_app
    waits_before = (
        sample_value(
            instruments.celery_task_queue_wait_seconds,
            "celery_task_queue_wait_seconds_count",
            task="tests.monitoring.worker_add",
        )
        or 0
    )
    assert worker_add.delay(1, 2).get(timeout=10) == 3
    # The publish time stamped by before_task_publish reached the worker.
    waits = sample_value(
        instruments.celery_task_queue_wait_seconds,
        "celery_task_queue_wait_seconds_count",
        task="tests.monitoring.worker_add",
    )
    assert waits == waits_before + 1

    workers = celery_workers_answering(app=app, timeout=1.0)
    assert sorted(QUEUES) in workers.values()

    (result,) = run_checks([CeleryCheck(broker_url=REDIS_URL, app=app)], timeout=2.0)
    assert result.status == "ok", result
    assert result.facts["workers_answering"] >= 1
    assert result.facts["queue_length"][QUEUES[0]] == 0

    collector = CeleryCollector(app=app, client=redis_db, workers_timeout=1.0, budget=3.0)
    reading = collector.snapshot()
    assert reading["workers_online"] >= 1
    assert reading["broker_up"] is True


@pytest.mark.redis
def test_event_queues_are_not_work_queues(redis_db):
    """An event receiver's `celeryev.<uuid>` queue, declared through kombu as Celery's event
    receivers (Flower, `celery events`) do: a new name per process, so never a label."""
    from kombu import Connection, Exchange, Queue

    with Connection(REDIS_URL) as conn:
        events = Exchange("celeryev", type="topic")
        Queue("celeryev.6f1c", events, routing_key="worker.#", auto_delete=True)(conn).declare()
    assert redis_db.exists("_kombu.binding.celeryev")
    queues = celery_queue_names(app=project_app, client=redis_db)
    assert "celery" in queues
    assert not [q for q in queues if "celeryev" in q], queues


def test_task_outcomes_start_at_zero_when_a_worker_starts():
    """Every known task's outcomes exist at 0 once a worker starts (worker_init), so the first
    failure is an increase the rules see; Celery's own tasks are left out."""
    from celery import signals

    app = Celery("zero-outcomes", set_as_current=False)

    @app.task(name="tests.monitoring.never_run")
    def never_run():
        return None

    class Worker:  # what worker_init sends: the worker, with its app
        pass

    worker = Worker()
    worker.app = app
    signals.worker_init.send(sender=worker)
    for state in ("succeeded", "failed", "retried"):
        assert outcomes("tests.monitoring.never_run", state) == 0
    assert outcomes("celery.backend_cleanup", "failed") is None
