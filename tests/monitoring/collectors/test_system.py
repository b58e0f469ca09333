"""The system collector against the live machine: sane ranges, both renderings agree."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from monitoring.collectors.system import (
    MIN_CPU_WINDOW_SECONDS,
    PROJECT_ROOT,
    SystemCollector,
    is_our_celery_worker,
)


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def test_snapshot_has_sane_ranges():
    reading = SystemCollector().snapshot()
    assert 0 <= reading["cpu_usage_percent"] <= 100
    assert reading["cpu_cores"] == len(reading["cpu_core_usage_percent"]) >= 1
    assert all(0 <= v <= 100 for v in reading["cpu_core_usage_percent"].values())
    assert 0 < reading["memory_usage_percent"] < 100
    assert reading["memory_total_bytes"] > reading["memory_available_bytes"] > 0
    assert "/" in reading["disks"]
    root = reading["disks"]["/"]
    assert 0 < root["usage_percent"] < 100
    assert root["total_bytes"] >= root["used_bytes"] > 0
    assert "lo" in reading["network"]
    assert reading["load_average_1m"] >= 0
    assert reading["network_connections"] is None or reading["network_connections"]


def test_this_process_is_counted_as_web():
    reading = SystemCollector(pid=os.getpid()).snapshot()
    web = reading["processes"]["web"]
    assert web["count"] >= 1
    assert web["resident_memory_bytes"] > 10 * 1024 * 1024
    assert web["threads"] >= 1
    assert web["open_fds"] >= 3


def stand_in(app: str, cwd: Path) -> subprocess.Popen:
    """A process whose command line reads like `celery -A <app> worker`, started in `cwd`."""
    code = "import sys, time; sys.stdout.write('up'); sys.stdout.flush(); time.sleep(60)"
    argv = [sys.executable, "-c", code, "celery", "-A", app, "worker"]
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE)
    assert proc.stdout.read(2) == b"up"  # running (its command line is set) before we look
    return proc


def test_only_this_deployments_celery_workers_are_counted(tmp_path):
    """Defect 11: another deployment's workers on the same host were counted as ours."""
    ours = stand_in("config", PROJECT_ROOT)
    foreign_app = stand_in("other", PROJECT_ROOT)
    foreign_dir = stand_in("config", tmp_path)  # the same code, another checkout
    try:
        roles = SystemCollector().process_roles()
        assert roles.get(ours.pid) == "celery"
        # (Children of this test process, so they may count as "web": never as our workers.)
        assert roles.get(foreign_app.pid) != "celery"
        assert roles.get(foreign_dir.pid) != "celery"
        processes = SystemCollector().snapshot()["processes"]
        assert processes["celery"]["count"] >= 1
        assert processes["celery"]["resident_memory_bytes"] > 1024 * 1024
    finally:
        for proc in (ours, foreign_app, foreign_dir):
            proc.kill()
            proc.wait()


def test_celery_worker_command_lines():
    root = Path("/srv/shop")
    worker = ["/venv/bin/celery", "-A", "config", "worker", "--concurrency", "2"]
    assert is_our_celery_worker(worker, "/srv/shop", root=root)
    assert is_our_celery_worker(
        ["celery", "--app=config.celery:app", "worker"], "/srv/shop", root=root
    )
    assert is_our_celery_worker(["celery", "worker"], "/srv/shop/var", root=root)
    assert not is_our_celery_worker(worker, "/srv/other-shop", root=root)
    assert not is_our_celery_worker(worker, None, root=root)  # another user's process
    assert not is_our_celery_worker(["celery", "-Aother", "worker"], "/srv/shop", root=root)
    assert not is_our_celery_worker(["celery", "-A", "config", "beat"], "/srv/shop", root=root)


def test_cpu_is_measured_between_readings_without_sleeping(monkeypatch):
    # No sleep inside a reading (a blocking psutil.cpu_percent(interval=...) would sleep in
    # this thread); wall time cannot tell, a loaded machine makes a reading slow too.
    reader, real_sleep = threading.current_thread(), time.sleep

    def sleep(seconds: float) -> None:
        assert threading.current_thread() is not reader, f"a reading slept {seconds} s"
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    collector = SystemCollector()
    collector.read()
    # Keep a core busy until this process has used 0.5 s of CPU: on a loaded machine that takes
    # longer, and its share of the wall time is what the reading must show. And for longer than
    # the collector's shortest window: a reading sooner after the one before is measured from
    # the baseline before that (here: since boot, whatever the machine did then).
    cpu_started, wall_started = time.process_time(), time.monotonic()
    while (
        time.process_time() - cpu_started < 0.5
        or time.monotonic() - wall_started < 1.5 * MIN_CPU_WINDOW_SECONDS
    ) and time.monotonic() - wall_started < 60:
        sum(range(1000))
    share = 100 * (time.process_time() - cpu_started) / (time.monotonic() - wall_started)
    reading = collector.read()
    assert reading["processes"]["web"]["cpu_percent"] >= 0.8 * share
    assert reading["cpu_usage_percent"] >= 0.8 * share / os.cpu_count()


def test_prometheus_output_matches_the_snapshot():
    registry = CollectorRegistry()
    registry.register(SystemCollector())
    text = generate_latest(registry).decode()
    for name in (
        "cpu_usage_percent",
        "memory_usage_percent",
        "swap_usage_percent",
        "memory_cached_bytes",
        "system_load_average_1m",
        "system_load_average_5m",
        "system_load_average_15m",
    ):
        assert f"\n{name} " in text, name
    assert 0 < sample(registry, "disk_usage_percent", mountpoint="/") < 100
    assert sample(registry, "network_received_bytes_total", interface="lo") >= 0
    assert sample(registry, "app_processes", role="web") >= 1
    assert sample(registry, "cpu_core_usage_percent", core="0") is not None
