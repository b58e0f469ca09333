"""A Celery worker on its own host serves its own metrics: a real prefork worker (2 pool
processes, Redis db 7 as broker) scraped over HTTP with the monitoring bearer token. Its task
counters add up over the pool; the queue figures come only while it holds the shop-wide lease.
"""

import os
import socket
import subprocess
import sys
import time

import pytest
import redis
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from monitoring.collectors.shop_wide import LEASE_KEY
from tests.gunicorn import ROOT
from tests.services import require_redis

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.xdist_group("redis-db-7")]

BROKER = "redis://127.0.0.1:6379/7"
TOKEN = "worker-metrics-token"
TASKS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def until(condition, timeout: float = 60.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def broker():
    require_redis()
    client = redis.Redis.from_url(BROKER)
    client.flushdb()  # db 7 is this test's (the brief's allocation)
    yield client
    client.flushdb()


@pytest.fixture
def worker(broker, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": BROKER,
        "VAR_DIR": str(tmp_path),
        "MONITORING_TOKEN": TOKEN,
        "CELERY_METRICS_LISTEN": f"127.0.0.1:{port}",
        "MONITORING_SHOP_WIDE": "lease",
        "MONITORING_HOST_ID": "worker1",
        "MONITORING_SHOP_LEASE_SECONDS": "3",
        "MONITORING_COLLECTOR_INTERVAL": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # A web host holds the lease when the worker starts.
    broker.set(LEASE_KEY, "web1", px=600_000)
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
            "--concurrency=2", "--without-gossip", "--without-mingle", "--loglevel=INFO"]  # fmt: skip
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield f"http://127.0.0.1:{port}", process, tmp_path
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    answer = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    answer.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_a_worker_host_serves_its_pool_metrics_and_queue_figures_only_with_the_lease(
    worker, broker
):
    url, process, tmp_path = worker

    def up():
        if process.poll() is not None:
            raise AssertionError((tmp_path / "worker.log").read_text())
        try:
            return [requests.get(f"{url}/metrics", timeout=2)]  # a 401 Response is falsy
        except requests.ConnectionError:
            return None

    [refused] = until(up, what="the worker's metrics endpoint")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = requests.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    assert requests.get(f"{url}/other", timeout=5).status_code == 404

    sender = Celery("sender", broker=BROKER)
    for i in range(TASKS):
        sender.send_task("celery.accumulate", args=(i,))

    def all_counted():
        samples = scrape(url)
        done = value(samples, "celery_tasks_total", task="celery.accumulate", state="succeeded")
        return samples if done == TASKS else None

    samples = until(all_counted, what=f"{TASKS} tasks counted")
    runtimes = value(samples, "celery_task_runtime_seconds_count", task="celery.accumulate")
    assert runtimes == TASKS
    # Two pool processes and the main one, each its own process_* series.
    pids = {
        dict(labels)["pid"] for name, labels in samples if name == "process_resident_memory_bytes"
    }
    assert len(pids) >= 3, pids
    # web1 holds the lease: the worker leaves queue figures to it, but says it can queue.
    assert value(samples, "monitoring_shop_collector_leader") == 0
    assert value(samples, "celery_broker_up") == 1
    assert not any(name in ("celery_workers_online", "celery_queue_length") for name, _ in samples)

    broker.delete(LEASE_KEY)  # web1 is gone: the next scrape of the worker takes over

    def queue_figures():
        samples = scrape(url)
        return samples if value(samples, "celery_workers_online") == 1 else None

    samples = until(queue_figures, what="the worker exporting workers online")
    assert value(samples, "monitoring_shop_collector_leader") == 1
    assert value(samples, "celery_queue_length", queue="celery") == 0
    assert broker.get(LEASE_KEY) == b"worker1"
