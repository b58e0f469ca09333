"""A real `monitor run`, SIGKILLed and started again, still has the samples it scraped."""

from __future__ import annotations

import signal
import time

import pytest

from tests.monitoring.monitor.exporter import Exporter
from tests.monitoring.monitor.test_run import MonitorProcess, database  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def _query(monitor: MonitorProcess, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
    body = monitor.client.get("/api/v1/query", params=params).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_increase_over_samples_scraped_before_a_sigkill(tmp_path, database):  # noqa: F811
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 300ms, evaluation_interval: 300ms}\n"
        "scrape_configs:\n  - job_name: app\n    static_configs: [{targets: ['%s']}]\n"
    )
    env = {**database, "MONITOR_DATA_DIR": str(tmp_path / "data")}
    with Exporter() as exporter:
        config = tmp_path / "prometheus.yml"
        config.write_text(config.read_text() % exporter.address)
        count = 0
        exporter.body = f"x_total {count}\n"
        first = MonitorProcess(config, env)
        try:
            # Let the counter grow by 10 a scrape for at least 15 scrapes.
            seen = 0
            while seen < 15:
                asked = len(exporter.requests)
                first.wait_for(lambda a=asked: len(exporter.requests) > a, timeout=15)
                count += 10
                exporter.body = f"x_total {count}\n"
                seen += 1
            at = time.time()
            first.wait_for(lambda: len(_query(first, "x_total[1m]", at)) == 1, timeout=15)
            (before,) = _query(first, "increase(x_total[5m])", at)
            assert float(before["value"][1]) >= 100
        finally:
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            first.client.close()
    # The exporter is gone: whatever the new process answers comes from what it loaded.
    second = MonitorProcess(config, env)
    try:
        (after,) = _query(second, "increase(x_total[5m])", at)
        assert after == before
        (now,) = _query(second, "increase(x_total[5m])")
        assert float(now["value"][1]) >= 100
    finally:
        assert second.stop() == 0


def test_an_unusable_data_directory_leaves_the_monitor_running_in_memory(tmp_path, database):  # noqa: F811
    (tmp_path / "prometheus.yml").write_text("scrape_configs: []\n")
    (tmp_path / "data").write_text("a file where the directory should be\n")
    env = {**database, "MONITOR_DATA_DIR": str(tmp_path / "data")}
    monitor = MonitorProcess(tmp_path / "prometheus.yml", env)
    try:
        assert monitor.wait_for(lambda: monitor.logged("cannot open the sample store"), 10)
        assert monitor.client.get("/-/ready").status_code == 200
    finally:
        assert monitor.stop() == 0
