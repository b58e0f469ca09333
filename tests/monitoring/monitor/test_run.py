"""`manage.py monitor run` as a real subprocess against a real local exporter.

Short intervals (scrape and evaluate every 300 ms, `for: 2s`) keep these end-to-end tests to a
few seconds each.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.monitoring.monitor.exporter import Exporter

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
RULES = """\
groups:
  - name: system
    rules:
      - alert: HighCpuUsage
        expr: cpu_usage_percent > 85
        for: 2s
        labels: {severity: warning}
        annotations:
          summary: "High CPU usage detected"
          description: "CPU usage is {{ $value }}%"
"""


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> dict[str, str]:
    """A migrated SQLite file the monitor processes of this module share (each test wipes it)."""
    tmp = tmp_path_factory.mktemp("monitor-db")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "VAR_DIR": str(tmp),
        "MONITOR_LISTEN": "127.0.0.1:0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MONITOR_TOKEN", None)
    env.pop("MONITORING_TOKEN", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    return env


@pytest.fixture
def exporter():
    with Exporter() as server:
        server.body = "cpu_usage_percent 95\n"
        yield server


@pytest.fixture
def setup(tmp_path, exporter, database):
    with sqlite3.connect(database["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        db.execute("DELETE FROM monitor_alerttransition")
        db.execute("DELETE FROM monitor_alertinstance")
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 300ms, evaluation_interval: 300ms}\n"
        "rule_files: ['rules.yml']\n"
        f"scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
    )
    return tmp_path


class MonitorProcess:
    def __init__(self, config: Path, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "monitor", "run", "--config", str(config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []  # stdout and stderr: where logging goes is not ours
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()
        try:
            url = self.wait_for(self._listening, timeout=15)
        except BaseException:
            self.proc.kill()  # never leave a monitor running behind a failed start
            self.proc.wait()
            raise
        token = env.get("MONITOR_TOKEN") or env.get("MONITORING_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url, timeout=5, headers=headers)

    def _drain(self, stream) -> None:
        for line in stream:
            self.output.append(line)

    def _listening(self) -> str | None:
        assert self.proc.poll() is None, "".join(self.output)
        for line in self.output:
            if line.startswith("monitor API listening on "):
                return line.split()[-1]
        return None

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.output)

    def alerts(self) -> list[dict]:
        return self.client.get("/api/v1/alerts").json()["data"]["alerts"]

    def wait_for(self, predicate, timeout: float = 8.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out; monitor output:\n{''.join(self.output)}")

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def run(database, tmp_path):
    started: list[MonitorProcess] = []
    # Each test's monitors keep their samples apart from other tests' (restarts share them).
    env = {**database, "MONITOR_DATA_DIR": str(tmp_path / "data")}

    def start(config: Path) -> MonitorProcess:
        process = MonitorProcess(config, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def _transitions(env: dict[str, str]) -> list[tuple[str, str, str]]:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        return db.execute(
            "SELECT alertname, from_state, to_state FROM monitor_alerttransition ORDER BY id"
        ).fetchall()


def _state(monitor: MonitorProcess, state: str):
    return [a for a in monitor.alerts() if a["state"] == state]


def test_alert_goes_pending_then_firing_then_resolves(setup, run, exporter, database):
    monitor = run(setup / "prometheus.yml")
    assert monitor.client.get("/-/ready").status_code == 200
    (pending,) = monitor.wait_for(lambda: _state(monitor, "pending"), timeout=10)
    assert pending["labels"]["alertname"] == "HighCpuUsage"
    assert pending["annotations"]["description"] == "CPU usage is 95%"
    (firing,) = monitor.wait_for(lambda: _state(monitor, "firing"), timeout=10)
    assert firing["activeAt"] == pending["activeAt"]
    alerts_series = monitor.client.get(
        "/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'}
    ).json()["data"]["result"]
    assert [r["metric"]["alertname"] for r in alerts_series] == ["HighCpuUsage"]
    exporter.body = "cpu_usage_percent 20\n"
    monitor.wait_for(lambda: monitor.alerts() == [], timeout=10)
    assert monitor.stop() == 0
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
        ("HighCpuUsage", "firing", "inactive"),
    ]
    # `for: 2s`, evaluated every 300 ms: firing at the first evaluation after `for` elapsed.
    with sqlite3.connect(database["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        active_at, fired_at = db.execute(
            "SELECT active_at, fired_at FROM monitor_alerttransition WHERE to_state = 'firing'"
        ).fetchone()
    # (Parsed here: SQLite's julianday() arithmetic is off by microseconds.)
    held = (datetime.fromisoformat(fired_at) - datetime.fromisoformat(active_at)).total_seconds()
    assert 2.0 <= held <= 2.0 + 0.3 + 0.25, held  # + scheduling jitter on a busy machine


def test_a_restarted_monitor_restores_firing_alerts(setup, run, database):
    first = run(setup / "prometheus.yml")
    (firing,) = first.wait_for(lambda: _state(first, "firing"), timeout=10)
    assert first.stop() == 0
    second = run(setup / "prometheus.yml")
    # Right after start, before `for` could have elapsed again: still firing, same activeAt.
    (restored,) = second.alerts()
    assert restored["state"] == "firing" and restored["activeAt"] == firing["activeAt"]
    time.sleep(0.7)
    assert [a["state"] for a in second.alerts()] == ["firing"]
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
    ]


def test_a_restart_with_a_slow_first_scrape_does_not_resolve_restored_alerts(
    setup, run, exporter, database
):
    """The store starts empty: evaluating before the first scrape lands would resolve the
    restored alert, and it would page again once `for` had passed a second time."""
    first = run(setup / "prometheus.yml")
    first.wait_for(lambda: _state(first, "firing"), timeout=10)
    assert first.stop() == 0
    # Scrapes that take 1.5 s (within a 2.5 s timeout), five evaluation intervals.
    config = setup / "prometheus.yml"
    config.write_text(
        config.read_text().replace(
            "{scrape_interval: 300ms,", "{scrape_interval: 3s, scrape_timeout: 2500ms,"
        )
    )
    exporter.delay_s = 1.5
    asked = len(exporter.requests)
    second = run(config)
    second.wait_for(lambda: len(exporter.requests) > asked, timeout=10)
    time.sleep(2.0)  # the slow scrape landed, evaluations have run since
    assert [a["state"] for a in second.alerts()] == ["firing"]
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
    ]


def test_a_restart_keeps_counting_for_from_the_original_active_at(setup, run, database):
    first = run(setup / "prometheus.yml")
    (pending,) = first.wait_for(lambda: _state(first, "pending"), timeout=10)
    assert first.stop() == 0
    second = run(setup / "prometheus.yml")
    (restored,) = second.alerts()
    assert restored["state"] == "pending" and restored["activeAt"] == pending["activeAt"]
    (firing,) = second.wait_for(lambda: _state(second, "firing"), timeout=10)
    assert firing["activeAt"] == pending["activeAt"]
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
    ]


def test_sighup_with_a_bad_rule_file_keeps_the_running_configuration(setup, run):
    monitor = run(setup / "prometheus.yml")
    monitor.wait_for(lambda: _state(monitor, "pending"), timeout=10)
    (setup / "rules.yml").write_text(RULES.replace("cpu_usage_percent > 85", "cpu_usage_percent >"))
    monitor.proc.send_signal(signal.SIGHUP)
    monitor.wait_for(lambda: monitor.logged("reload failed"), timeout=10)
    assert monitor.logged("rules.yml:")
    (group,) = monitor.client.get("/api/v1/rules").json()["data"]["groups"]
    assert group["rules"][0]["query"] == "cpu_usage_percent > 85"
    assert monitor.wait_for(lambda: _state(monitor, "firing"), timeout=10)
    # A good file is then picked up, through the HTTP reload endpoint this time.
    (setup / "rules.yml").write_text(RULES.replace("HighCpuUsage", "CpuHot"))
    assert monitor.client.post("/-/reload").status_code == 200
    names = monitor.wait_for(
        lambda: {a["labels"]["alertname"] for a in monitor.alerts()} == {"CpuHot"}, timeout=3
    )
    assert names
    (setup / "prometheus.yml").write_text("global: {scrape_interval: nope}\n")
    response = monitor.client.post("/-/reload")
    assert response.status_code == 500 and "scrape_interval" in response.text


def test_a_bad_configuration_refuses_to_start_with_file_and_line(tmp_path, database):
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n  bogus: 1\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "monitor", "run", "--config", str(config)],
        cwd=REPO,
        env=database,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"{config}:3: global: unknown key 'bogus'" in result.stderr


def test_without_its_database_the_monitor_still_scrapes_evaluates_and_answers(setup, run, database):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # nothing listens here once the socket is closed
    env = {
        **database,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead}/nowhere",
        "MONITOR_DATA_DIR": str(setup / "data"),
    }
    monitor = MonitorProcess(setup / "prometheus.yml", env)
    try:
        assert monitor.wait_for(lambda: _state(monitor, "firing"), timeout=6)
        assert monitor.logged("could not restore alert state")
        assert monitor.logged("evaluation of group system failed")
        assert monitor.client.get("/-/ready").status_code == 200
    finally:
        assert monitor.stop() == 0
