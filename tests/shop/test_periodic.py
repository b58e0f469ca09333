"""Beat's schedule without Redis: shop.periodic and `manage.py beat_inprocess` (what make up runs)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from shop.periodic import run_schedule, schedule_intervals
from tests.services import require_redis
from tests.wait import wait_for

# Shares Redis database 15 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-15")

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_entry_runs_at_once_then_every_interval_and_failures_do_not_stop_it():
    clock, stop, runs = FakeClock(), threading.Event(), []
    schedule = {
        "often": {"task": "a", "schedule": 10},
        "rarely": {"task": "b", "schedule": timedelta(seconds=25)},
    }

    def run(task: str) -> None:
        runs.append((clock.now, task))
        if task == "b":
            raise RuntimeError("a failing task is logged, not fatal")
        if clock.now >= 50:
            stop.set()

    class SteppingStop:
        """stop.wait(timeout) moves the fake clock instead of sleeping."""

        def is_set(self) -> bool:
            return stop.is_set()

        def wait(self, timeout: float) -> bool:
            clock.now += timeout
            return stop.is_set()

    run_schedule(schedule, run=run, stop=SteppingStop(), clock=clock)
    assert runs == [
        (0, "a"), (0, "b"), (10, "a"), (20, "a"), (25, "b"), (30, "a"), (40, "a"), (50, "a"), (50, "b"),
    ]  # fmt: skip


def test_the_shipped_schedule_expires_reservations():
    from django.conf import settings

    intervals = schedule_intervals(settings.CELERY_BEAT_SCHEDULE)
    assert ("shop.orders.tasks.order_reservations_expire", 60.0) in intervals.values()
    with pytest.raises(ValueError, match="positive"):
        schedule_intervals({"x": {"task": "t", "schedule": 0}})


def _shop_with_an_order(tmp_path: Path, **extra: str) -> tuple[dict, Path]:
    """A migrated SQLite shop in tmp_path with one pending order of 2 units (stock 5 → 3),
    and the environment of processes that expire it at once."""
    database = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{database}",
        "LOG_TO_STDOUT_ONLY": "true",
        "ORDER_RESERVATION_MINUTES": "0",
        "RESERVATION_SWEEP_SECONDS": "0.2",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, timeout=300)
    place_order = (
        "from django.contrib.auth.models import User; "
        "from shop.catalog.models import Category, Product; "
        "from shop.orders.services import order_create; "
        "c = Category.objects.create(name='P', slug='p'); "
        "p = Product.objects.create(sku='S', name='S', category=c, price=1, stock_quantity=5); "
        "order_create(user=User.objects.create_user('u'), items=[(p.pk, 2)])"
    )
    subprocess.run([*manage, "shell", "-c", place_order], env=env, check=True, timeout=300)
    return {**env, **extra}, database


def _order_state(database: Path) -> tuple[str, int]:
    with sqlite3.connect(database, timeout=20) as db:
        (status,) = db.execute("select status from orders_order").fetchone()
        (stock,) = db.execute("select stock_quantity from catalog_product").fetchone()
    return status, stock


@pytest.mark.slow
def test_beat_inprocess_expires_a_reservation_and_stops_on_sigterm(tmp_path):
    env, database = _shop_with_an_order(tmp_path)
    manage = [sys.executable, str(ROOT / "manage.py")]
    beat = subprocess.Popen(
        [*manage, "beat_inprocess"], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert wait_for(
            lambda: _order_state(database) == ("cancelled", 5), timeout=120, what="the expiry"
        )
    finally:
        beat.send_signal(signal.SIGTERM)
        output, _ = beat.communicate(timeout=60)
    assert beat.returncode == 0
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [expired] = [line for line in lines if line["message"] == "Order reservation expired"]
    assert expired["units_released"] == 2 and expired["logger"] == "shop.orders"


@pytest.mark.slow
@pytest.mark.redis
def test_with_redis_celery_beat_schedules_the_expiry_and_a_worker_runs_it(tmp_path):
    require_redis()
    broker = "redis://127.0.0.1:6379/15"
    env, database = _shop_with_an_order(tmp_path, REDIS_URL=broker)
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    commands = {
        "beat": [*celery, "beat", "--schedule", str(tmp_path / "beat-schedule")],
        "worker": [*celery, "worker", "--pool=solo", "--without-gossip", "--without-mingle"],
    }
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in commands}  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [*command, "--loglevel=INFO"], cwd=ROOT, env=env, stdout=logs[name], stderr=logs[name]
        )
        for name, command in commands.items()
    ]
    try:
        assert wait_for(
            lambda: _order_state(database) == ("cancelled", 5), timeout=120, what="the expiry"
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()
        redis.Redis.from_url(broker).flushdb()  # this test's own Redis database
    worker_log = (tmp_path / "worker.log").read_text()
    assert "Order reservation expired" in worker_log
    assert "order_reservations_expire" in (tmp_path / "beat.log").read_text()
