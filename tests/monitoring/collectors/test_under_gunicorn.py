"""End to end: the app under gunicorn (2 workers) with Redis (database 2) and a real Celery
worker process sharing PROMETHEUS_MULTIPROC_DIR. The collectors' series, the web processes'
resources and the worker's task counters all reach /api/monitoring/prometheus/, and detailed
health reports every component ok."""

import os
import signal
import subprocess
import time

import httpx
import pytest
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicorn import BIN, ROOT, TOKEN, Gunicorn, app_env
from tests.monitoring.collectors.conftest import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.xdist_group("redis-db-2")]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORKER_PREFIX = f"health-{os.getpid()}@"
# A queue of this run only: a concurrent run's worker on Redis database 2 must not take ours.
QUEUE = f"health-e2e-{os.getpid()}"


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.services import require_redis

    require_redis()
    tmp = tmp_path_factory.mktemp("stack")
    server = Gunicorn(
        tmp,
        workers=2,
        REDIS_URL=REDIS_URL,
        MONITORING_COLLECTOR_BUDGET="3",
        MONITORING_COLLECTOR_INTERVAL="1",
    )
    server.start()
    env = app_env(tmp, REDIS_URL=REDIS_URL)
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "config", "worker", "--pool=prefork", "--concurrency=2",
         "-n", f"{WORKER_PREFIX}%h", "-Q", QUEUE, "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield server, worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()
        server.stop()


def test_collectors_and_worker_metrics_reach_the_prometheus_endpoint(stack):
    server, worker = stack
    sender = Celery("health-e2e", broker=REDIS_URL, set_as_current=False)
    sent = 3
    for i in range(sent):
        sender.send_task("celery.accumulate", args=(i,), queue=QUEUE)
    deadline = time.monotonic() + 30
    while True:
        found = samples(server.scrape_text())
        done = value(found, "celery_tasks_total", task="celery.accumulate", state="succeeded")
        if done == sent and (value(found, "celery_workers_online") or 0) >= 1:
            break
        assert worker.poll() is None, "the Celery worker exited"
        assert time.monotonic() < deadline, f"tasks seen: {done}"
        time.sleep(0.5)

    # The worker's runtime and queue-wait histograms, summed over its pool processes.
    runtime = "celery_task_runtime_seconds_count"
    assert value(found, runtime, task="celery.accumulate") == sent
    wait = "celery_task_queue_wait_seconds_count"
    assert value(found, wait, task="celery.accumulate") == sent
    # System, and the web processes: gunicorn's master and its 2 workers.
    assert 0 <= value(found, "cpu_usage_percent") <= 100
    assert 0 < value(found, "memory_usage_percent") < 100
    assert 0 < value(found, "disk_usage_percent", mountpoint="/") < 100
    assert value(found, "system_load_average_1m") >= 0
    assert value(found, "app_processes", role="web") == 3
    assert value(found, "app_process_resident_memory_bytes", role="web") > 0
    # Database (SQLite here), Redis, the broker's queue.
    assert value(found, "database_size_bytes") > 0
    assert value(found, "database_query_duration_seconds_count") > 0
    assert value(found, "redis_up") == 1
    assert value(found, "redis_connected_clients") >= 1
    assert value(found, "celery_queue_length", queue=QUEUE) == 0


def test_detailed_health_is_ok_with_every_component(stack):
    server, _ = stack
    response = httpx.get(f"{server.base_url}/api/health/detailed/", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    components = response.json()["components"]
    assert {name: c["status"] for name, c in components.items()} == {
        "database": "ok",
        "redis": "ok",
        "celery": "ok",
    }
    # Ours among those answering (a concurrent test run on this machine may add its own).
    ours = [name for name in components["celery"]["workers"] if name.startswith(WORKER_PREFIX)]
    assert len(ours) == 1
    assert components["celery"]["workers"][ours[0]] == [QUEUE]
    public = httpx.get(f"{server.base_url}/api/health/", timeout=10)
    assert public.status_code == 200 and public.json() == {"status": "ok"}


def test_json_endpoints_under_gunicorn(stack):
    server, _ = stack
    for category in ("system", "database", "redis", "application", "business"):
        response = httpx.get(f"{server.base_url}/api/monitoring/{category}/", headers=AUTH)
        assert response.status_code == 200, (category, response.text)
    assert httpx.get(f"{server.base_url}/api/monitoring/system/").status_code in (401, 403)
