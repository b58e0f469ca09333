"""`manage.py monitor run` as a real subprocess against a real local exporter.

Short intervals (scrape and evaluate every 300 ms, `for: 2s`) keep these end-to-end tests to a
few seconds each. They wait for events (an alert's state, evaluations seen through the API) with
generous deadlines, and check timing on the timestamps the monitor wrote, never on the clock of a
loaded machine.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.faults import closed_port
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
    """The monitor processes' environment: their state file under VAR_DIR (each test wipes
    it), and a DATABASE_URL where no database answers: the monitor never needs the shop's."""
    tmp = tmp_path_factory.mktemp("monitor-var")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere",
        "VAR_DIR": str(tmp),
        "MONITOR_LISTEN": "127.0.0.1:0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MONITOR_TOKEN", None)
    env.pop("MONITORING_TOKEN", None)
    env.pop("MONITOR_STATE_PATH", None)
    return env


def _state_file(env: dict[str, str]) -> Path:
    return Path(env["VAR_DIR"]) / "monitor" / "state.sqlite3"


@pytest.fixture
def exporter():
    with Exporter() as server:
        server.body = "cpu_usage_percent 95\n"
        yield server


@pytest.fixture
def setup(tmp_path, exporter, database):
    for path in _state_file(database).parent.glob("state.sqlite3*"):
        path.unlink()
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
            url = self.wait_for(self._listening, timeout=60)
        except BaseException:
            self.proc.kill()  # never leave a monitor running behind a failed start
            self.proc.wait()
            raise
        token = env.get("MONITOR_TOKEN") or env.get("MONITORING_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url, timeout=30, headers=headers)

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

    def wait_logged(self, text: str) -> None:
        """The line reaches `output` through a pipe and a reader thread: maybe after the HTTP
        answer that followed it in the monitor."""
        self.wait_for(lambda: self.logged(text))

    def alerts(self) -> list[dict]:
        return self.client.get("/api/v1/alerts").json()["data"]["alerts"]

    def wait_for(self, predicate, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out; monitor output:\n{''.join(self.output)}")

    def evaluations(self, alertname: str, state: str) -> list[int]:
        """When (ms) the evaluations that found `alertname` in `state` ran: the raw ALERTS
        samples the monitor wrote over the last 10 minutes."""
        query = f'ALERTS{{alertname="{alertname}",alertstate="{state}"}}[10m]'
        result = self.client.get("/api/v1/query", params={"query": query}).json()["data"]
        return sorted(round(t * 1000) for series in result["result"] for t, _ in series["values"])

    def assert_fired_at_first_evaluation_after_for(
        self, alertname: str, active_at: str, for_s: float
    ) -> None:
        """Pending at every evaluation before activeAt + for (this process ran), firing from the
        first one at or after it, however late a busy machine ran that evaluation."""
        active_ms = round(datetime.fromisoformat(active_at).timestamp() * 1000)
        pending = [t for t in self.evaluations(alertname, "pending") if t >= active_ms]
        firing = self.evaluations(alertname, "firing")
        assert firing, (pending, firing)
        assert max(pending, default=active_ms) < active_ms + for_s * 1000 <= firing[0], (
            active_ms,
            pending,
            firing,
        )

    def evaluated(self, times: int) -> None:
        """Wait until the (only) rule group has been evaluated `times` more times."""
        seen: set[str] = set()

        def done() -> bool:
            (group,) = self.client.get("/api/v1/rules").json()["data"]["groups"]
            seen.add(group["lastEvaluation"])
            return len(seen) > times  # the first value seen is the evaluation before

        self.wait_for(done)

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
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
    with sqlite3.connect(_state_file(env)) as db:
        return db.execute(
            "SELECT alertname, from_state, to_state FROM alert_transition ORDER BY id"
        ).fetchall()


def _state(monitor: MonitorProcess, state: str):
    return [a for a in monitor.alerts() if a["state"] == state]


def test_alert_goes_pending_then_firing_then_resolves(setup, run, exporter, database):
    monitor = run(setup / "prometheus.yml")
    assert monitor.client.get("/-/ready").status_code == 200
    (pending,) = monitor.wait_for(lambda: _state(monitor, "pending"))
    assert pending["labels"]["alertname"] == "HighCpuUsage"
    assert pending["annotations"]["description"] == "CPU usage is 95%"
    (firing,) = monitor.wait_for(lambda: _state(monitor, "firing"))
    assert firing["activeAt"] == pending["activeAt"]
    # `for: 2s`: firing at the first evaluation at or after activeAt + 2 s.
    monitor.assert_fired_at_first_evaluation_after_for("HighCpuUsage", firing["activeAt"], 2)
    alerts_series = monitor.client.get(
        "/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'}
    ).json()["data"]["result"]
    assert [r["metric"]["alertname"] for r in alerts_series] == ["HighCpuUsage"]
    exporter.body = "cpu_usage_percent 20\n"
    monitor.wait_for(lambda: monitor.alerts() == [])
    assert monitor.stop() == 0
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
        ("HighCpuUsage", "firing", "inactive"),
    ]
    # `for: 2s`, evaluated every 300 ms: firing at the first evaluation after `for` elapsed.
    with sqlite3.connect(_state_file(database)) as db:
        active_at, fired_at = db.execute(
            "SELECT active_at_ms, fired_at_ms FROM alert_transition WHERE to_state = 'firing'"
        ).fetchone()
    held = (fired_at - active_at) / 1000
    assert held >= 2.0, held


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_a_restarted_monitor_restores_firing_alerts(setup, run, database, signum):
    first = run(setup / "prometheus.yml")
    (firing,) = first.wait_for(lambda: _state(first, "firing"), timeout=60)
    # Recorded (the API shows an evaluation a moment before its state is committed).
    first.wait_for(lambda: len(_transitions(database)) == 2, timeout=60)
    first.proc.send_signal(signum)  # SIGKILL: no shutdown, only what was committed is kept
    first.proc.wait(timeout=15)
    restarted_ms = time.time() * 1000
    second = run(setup / "prometheus.yml")
    # Right after start: still firing, same activeAt; and after evaluations too.
    (restored,) = second.alerts()
    assert restored["state"] == "firing" and restored["activeAt"] == firing["activeAt"]
    second.evaluated(3)
    assert [a["state"] for a in second.alerts()] == ["firing"]
    # Never pending again: the store keeps the first process's ALERTS samples (durable), so
    # only the evaluations since the restart count.
    pending = second.evaluations("HighCpuUsage", "pending")
    assert pending and all(t < restarted_ms for t in pending), (restarted_ms, pending)
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
    first.wait_for(lambda: _state(first, "firing"))
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
    second.wait_for(lambda: len(exporter.requests) > asked)
    # The slow scrape landed, and evaluations have run since.
    second.wait_for(
        lambda: second.client.get("/api/v1/query", params={"query": "up == 1"}).json()["data"][
            "result"
        ]
    )
    second.evaluated(2)
    assert [a["state"] for a in second.alerts()] == ["firing"]
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
    ]


def test_a_restart_keeps_counting_for_from_the_original_active_at(setup, run, database):
    # `for: 20s`, the restart at least 5 s after activation: the alert must fire at activeAt +
    # 20 s, at least 5 s before "20 s after the restart" (the clock started over). However
    # slowly a loaded machine restarts, the restored alert keeps its activeAt (and is firing
    # at once if the restart took longer than what was left of `for`).
    (setup / "rules.yml").write_text(RULES.replace("for: 2s", "for: 20s"))
    first = run(setup / "prometheus.yml")
    (pending,) = first.wait_for(lambda: _state(first, "pending"))
    active_s = datetime.fromisoformat(pending["activeAt"]).timestamp()
    first.wait_for(lambda: time.time() >= active_s + 5)
    assert first.stop() == 0
    restarted_ms = time.time() * 1000
    second = run(setup / "prometheus.yml")
    alerts = second.alerts()
    assert len(alerts) == 1, "".join(second.output)
    (restored,) = alerts
    assert restored["state"] in ("pending", "firing")
    assert restored["activeAt"] == pending["activeAt"]
    (firing,) = second.wait_for(lambda: _state(second, "firing"), timeout=90)
    assert firing["activeAt"] == pending["activeAt"]
    second.assert_fired_at_first_evaluation_after_for("HighCpuUsage", pending["activeAt"], 20)
    assert second.evaluations("HighCpuUsage", "firing")[0] < restarted_ms + 20_000
    assert _transitions(database) == [
        ("HighCpuUsage", "inactive", "pending"),
        ("HighCpuUsage", "pending", "firing"),
    ]


def test_sighup_with_a_bad_rule_file_keeps_the_running_configuration(setup, run):
    monitor = run(setup / "prometheus.yml")
    monitor.wait_for(lambda: _state(monitor, "pending"))
    (setup / "rules.yml").write_text(RULES.replace("cpu_usage_percent > 85", "cpu_usage_percent >"))
    monitor.proc.send_signal(signal.SIGHUP)
    monitor.wait_logged("reload failed")
    monitor.wait_logged("rules.yml:")
    (group,) = monitor.client.get("/api/v1/rules").json()["data"]["groups"]
    assert group["rules"][0]["query"] == "cpu_usage_percent > 85"
    assert monitor.wait_for(lambda: _state(monitor, "firing"))
    # A good file is then picked up, through the HTTP reload endpoint this time.
    (setup / "rules.yml").write_text(RULES.replace("HighCpuUsage", "CpuHot"))
    assert monitor.client.post("/-/reload").status_code == 200
    names = monitor.wait_for(
        lambda: {a["labels"]["alertname"] for a in monitor.alerts()} == {"CpuHot"}
    )
    assert names
    (setup / "prometheus.yml").write_text("global: {scrape_interval: nope}\n")
    response = monitor.client.post("/-/reload")
    assert response.status_code == 500 and "scrape_interval" in response.text


def _runtimeinfo(monitor: MonitorProcess) -> dict:
    return monitor.client.get("/api/v1/status/runtimeinfo").json()["data"]


def test_a_bad_configuration_at_start_is_reported_with_file_and_line_and_the_monitor_runs(
    tmp_path, run
):
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n  bogus: 1\n")
    monitor = run(config)
    assert monitor.client.get("/-/ready").status_code == 200
    info = _runtimeinfo(monitor)
    assert info["reloadConfigSuccess"] is False
    assert info["lastConfigTime"] == "0001-01-01T00:00:00Z"  # no good configuration read yet
    assert info["configErrors"] == [f"{config}:3: global: unknown key 'bogus'"]
    monitor.wait_logged(f"{config}:3: global: unknown key 'bogus'")
    config.write_text("global:\n  scrape_interval: 15s\n")
    assert monitor.client.post("/-/reload").status_code == 200
    info = _runtimeinfo(monitor)
    assert info["reloadConfigSuccess"] is True and info["configErrors"] == []
    assert info["lastConfigTime"] != "0001-01-01T00:00:00Z"


def test_a_broken_rule_file_at_start_leaves_out_that_file_only(setup, run):
    """A typo in one rule file used to keep the monitor (and `make up`) from starting."""
    (setup / "broken_rules.yml").write_text(
        "groups:\n  - name: broken\n    rules:\n      - alert: Oops\n        expr: up ==\n"
    )
    config = setup / "prometheus.yml"
    config.write_text(config.read_text().replace("['rules.yml']", "['rules.yml', '*_rules.yml']"))
    monitor = run(config)
    # The good file runs: its alert goes pending on the scraped value.
    (pending,) = monitor.wait_for(lambda: _state(monitor, "pending"), timeout=30)
    assert pending["labels"]["alertname"] == "HighCpuUsage"
    groups = monitor.client.get("/api/v1/rules").json()["data"]["groups"]
    assert [g["name"] for g in groups] == ["system"]
    info = _runtimeinfo(monitor)
    assert info["reloadConfigSuccess"] is False
    (error,) = info["configErrors"]
    assert error.startswith(f"{setup / 'broken_rules.yml'}:5: ")
    monitor.wait_logged(error)


def test_a_thresholds_typo_is_refused_on_reload_with_file_and_line(setup, run):
    thresholds = setup / "thresholds.yml"
    thresholds.write_text((REPO / "deploy/prometheus/thresholds.yml").read_text())
    monitor = run(setup / "prometheus.yml")
    assert _runtimeinfo(monitor)["reloadConfigSuccess"] is True
    thresholds.write_text(
        thresholds.read_text().replace("blocked_clients: 10", "blocked_clients: 1O")
    )
    response = monitor.client.post("/-/reload")
    assert response.status_code == 500
    problem = f"{thresholds}:19: redis.blocked_clients: expected a number, got '1O'"
    assert problem in response.text
    info = _runtimeinfo(monitor)
    assert info["reloadConfigSuccess"] is False and info["configErrors"] == [problem]
    monitor.wait_logged("reload failed, keeping the running configuration")
    # The running configuration stays: its rule still evaluates.
    assert monitor.wait_for(lambda: _state(monitor, "firing"), timeout=30)


def test_without_the_shops_database_the_monitor_records_alert_state(setup, run, database):
    """DATABASE_URL points where nothing answers (as for every test here): the monitor keeps
    its state in its own file, so nothing fails and every transition is recorded."""
    monitor = run(setup / "prometheus.yml")
    assert monitor.wait_for(lambda: _state(monitor, "firing"), timeout=60)
    monitor.wait_for(lambda: len(_transitions(database)) == 2, timeout=60)
    assert monitor.stop() == 0
    for problem in ("evaluation of group", "alert state", "Traceback"):
        assert not monitor.logged(problem), monitor.output


def test_a_corrupt_state_file_is_moved_aside_and_the_monitor_runs(setup, run, database):
    state = _state_file(database)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(b"\x00garbage, not SQLite" * 512)
    monitor = run(setup / "prometheus.yml")
    assert monitor.wait_for(lambda: _state(monitor, "firing"), timeout=60)
    monitor.wait_logged(f"monitor state file {state} is unreadable")
    (aside,) = state.parent.glob("state.sqlite3.corrupt-*")
    assert aside.read_bytes().startswith(b"\x00garbage")
    monitor.wait_for(lambda: len(_transitions(database)) == 2, timeout=60)
