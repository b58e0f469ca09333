"""A real Celery worker for the APM tests: the project's app on Redis database 15, consuming
this run's queue only, with the APM settings a test gives it (its own process, so Sentry and
OpenTelemetry set up the way a deployed worker does)."""

import os
import subprocess
import sys
from pathlib import Path

import kombu.pools
import pytest
import redis

from config.celery import app as celery_app
from tests.monitoring.apm.tasks import QUEUE
from tests.services import require_redis

BROKER = "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parents[3]


def _reset_producer_pools() -> None:
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_broker():
    """This process publishes to Redis db 15 instead of running tasks eagerly."""
    require_redis()
    client = redis.Redis.from_url(BROKER)
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url=BROKER)
    _reset_producer_pools()
    yield client
    celery_app.conf.update(saved)
    _reset_producer_pools()
    client.delete(QUEUE)  # this run's queue only: other runs share the database


class Worker:
    def __init__(self, tmp: Path, queues: list[str], env: dict[str, str]) -> None:
        self.log_path = tmp / "worker.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                "-I", "tests.monitoring.apm.tasks", "-Q", ",".join(queues),
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "REDIS_URL": BROKER,
                "VAR_DIR": str(tmp),
                "APM_TEST_QUEUE": QUEUE,
                "PYTHONPATH": str(ROOT),
                **env,
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def start_worker(redis_broker, tmp_path):
    workers = []

    def start(env: dict[str, str], queues: list[str] | None = None) -> Worker:
        worker = Worker(tmp_path, queues or [QUEUE], env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
