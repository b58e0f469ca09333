"""Issue 9's acceptance drills, on real processes: a SIGKILLed monitor, a killed web app.

Each drill starts real processes (a `monitor run`, the app under gunicorn or a local exporter)
and waits for events through the monitor's API with generous deadlines, never a fixed sleep:
the machine running them may be loaded. Timing is checked on the timestamps the monitor wrote
(ALERTS samples, `activeAt`, the state file), not on the test's clock.
"""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.faults import closed_port
from tests.gunicorn import ROOT, TOKEN, Gunicorn
from tests.monitoring.monitor.exporter import Exporter
from tests.monitoring.monitor.test_run import MonitorProcess, database  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

# Killed 10 s into it, the restarted monitor has 30 s to come up and show the backlog still
# pending (a few seconds even on a loaded machine); "`for` after the restart" would be 10 s late.
PENDING_FOR_S = 40

KILL_RULES = f"""\
groups:
  - name: drill
    rules:
      - alert: ErrorBurst
        expr: increase(errors_total[5m]) > 3
        for: 1s
      - alert: QueueBacklog
        expr: queue_depth > 10
        for: {PENDING_FOR_S}s
"""


def _transitions(state_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(state_path) as db:
        return db.execute(
            "SELECT alertname, from_state, to_state FROM alert_transition ORDER BY id"
        ).fetchall()


def _alert(monitor: MonitorProcess, alertname: str, state: str) -> dict | None:
    for alert in monitor.alerts():
        if alert["labels"]["alertname"] == alertname and alert["state"] == state:
            return alert
    return None


def _value(monitor: MonitorProcess, expr: str) -> float | None:
    body = monitor.client.get("/api/v1/query", params={"query": expr}).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _seconds(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def test_sigkill_keeps_firing_alerts_increase_windows_and_for_clocks(tmp_path, database):  # noqa: F811
    """SIGKILL while an `increase()` alert fires and another is pending; started again on the
    same data directory and state file: the firing one stays firing (same `activeAt`, no
    transition recorded), its 5-minute window still holds the errors scraped before the kill,
    and the pending one fires at its original activeAt + `for`, not `for` after the restart."""
    (tmp_path / "rules.yml").write_text(KILL_RULES)
    config = tmp_path / "prometheus.yml"
    state_path = tmp_path / "state.sqlite3"
    env = {
        **database,
        "MONITOR_DATA_DIR": str(tmp_path / "data"),
        "MONITOR_STATE_PATH": str(state_path),
    }
    with Exporter() as exporter:
        exporter.body = "errors_total 0\nqueue_depth 0\n"
        config.write_text(
            "global: {scrape_interval: 300ms, evaluation_interval: 300ms}\n"
            "rule_files: ['rules.yml']\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        )
        first = MonitorProcess(config, env)
        try:
            # The counter's 0 is stored before the burst, so the burst is an increase of 10.
            first.wait_for(lambda: _value(first, "errors_total") == 0)
            exporter.body = "errors_total 10\nqueue_depth 50\n"
            firing = first.wait_for(lambda: _alert(first, "ErrorBurst", "firing"), timeout=60)
            pending = first.wait_for(lambda: _alert(first, "QueueBacklog", "pending"), timeout=60)
            before = [
                ("ErrorBurst", "inactive", "pending"),
                ("ErrorBurst", "pending", "firing"),
                ("QueueBacklog", "inactive", "pending"),
            ]
            # Committed (the API shows an evaluation a moment before its state is written).
            first.wait_for(lambda: sorted(_transitions(state_path)) == sorted(before), 60)
            # Killed 10 s into the backlog's `for`, so "`for` after the restart" is 10 s late.
            active_s = _seconds(pending["activeAt"])
            first.wait_for(lambda: time.time() >= active_s + 10, timeout=60)
            assert _alert(first, "QueueBacklog", "pending"), first.alerts()
        finally:
            first.proc.send_signal(signal.SIGKILL)  # no shutdown: only what was written stays
            first.proc.wait(timeout=30)
            first.client.close()
        recorded = _transitions(state_path)
        restarted_s = time.time()
        second = MonitorProcess(config, env)
        try:
            # From the first answer on: the same alerts in the same states, same activeAt.
            assert _alert(second, "ErrorBurst", "firing")["activeAt"] == firing["activeAt"]
            assert _alert(second, "QueueBacklog", "pending")["activeAt"] == pending["activeAt"]
            # The new process scrapes again (the counter is flat at 10 since before the kill):
            # only the samples scraped before the kill make the window's increase 10.
            asked = len(exporter.requests)
            second.wait_for(lambda: len(exporter.requests) > asked + 3, timeout=60)
            second.evaluated(3)
            increase = _value(second, "increase(errors_total[5m])")
            assert increase is not None and increase >= 10, increase
            assert _alert(second, "ErrorBurst", "firing")["activeAt"] == firing["activeAt"]

            # The backlog fires at its original activeAt + 60 s.
            fired = second.wait_for(
                lambda: _alert(second, "QueueBacklog", "firing"), timeout=PENDING_FOR_S + 120
            )
            assert fired["activeAt"] == pending["activeAt"]
            second.assert_fired_at_first_evaluation_after_for(
                "QueueBacklog", pending["activeAt"], PENDING_FOR_S
            )
            first_firing_ms = second.evaluations("QueueBacklog", "firing")[0]
            assert first_firing_ms < (restarted_s + PENDING_FOR_S) * 1000, (
                first_firing_ms,
                restarted_s,
            )
            # ErrorBurst never left `firing`: not pending again after the restart, no
            # transition written for it since the kill.
            pending_again = second.evaluations("ErrorBurst", "pending")
            assert all(t < restarted_s * 1000 for t in pending_again), pending_again
            assert _alert(second, "ErrorBurst", "firing")["activeAt"] == firing["activeAt"]
            second.wait_for(lambda: len(_transitions(state_path)) == len(recorded) + 1, 60)
            assert _transitions(state_path) == [
                *recorded,
                ("QueueBacklog", "pending", "firing"),
            ]
        finally:
            assert second.stop() == 0
    for problem in ("Traceback", "evaluation of group"):
        assert not second.logged(problem), second.output


TARGET_DOWN_FOR_S = 5


def _shipped_rules_scraping(tmp: Path, app_address: str) -> Path:
    """deploy/prometheus as shipped, scraping `app_address` every 2 s and evaluating every
    second, with two `for`s shortened for speed (the expressions and `keep_firing_for` as
    shipped): TargetDown 1m → 5 s, DatabaseDown 1m → 2 s."""
    prom = tmp / "prometheus"
    shutil.copytree(ROOT / "deploy/prometheus", prom, ignore=shutil.ignore_patterns("tests"))
    config = (prom / "prometheus.yml").read_text().replace("localhost:8000", app_address)
    config = re.sub(r"scrape_interval: \w+", "scrape_interval: 2s", config)
    config = re.sub(r"evaluation_interval: \w+", "evaluation_interval: 1s", config)
    (prom / "prometheus.yml").write_text(config)
    rules = (prom / "monitor_rules.yml").read_text()
    for alertname, shortened in (("TargetDown", f"{TARGET_DOWN_FOR_S}s"), ("DatabaseDown", "2s")):
        start = rules.index(f"- alert: {alertname}\n")
        head, rule = rules[:start], rules[start:]
        assert rule.index("for: 1m") < rule.index("- alert:", 1)
        rules = head + rule.replace("for: 1m", f"for: {shortened}", 1)
    (prom / "monitor_rules.yml").write_text(rules)
    return prom


class _AppWithoutItsDatabase(Gunicorn):
    """The app serving while its PostgreSQL does not answer: DatabaseDown fires before the
    drill, the alert of that target that must survive the scrape gap."""

    def migrate(self) -> None:
        pass  # nothing to migrate into: the database is down on purpose


def _app_alerts(monitor: MonitorProcess, job: str) -> dict[str, dict]:
    return {a["labels"]["alertname"]: a for a in monitor.alerts() if a["labels"].get("job") == job}


def test_the_web_app_killed_fires_target_down_and_its_other_alerts_keep_firing(
    tmp_path,
    database,  # noqa: F811
):
    """gunicorn's master and workers SIGKILLed: `up` goes 0, TargetDown goes pending, then
    firing at activeAt + its `for`; DatabaseDown, firing before, keeps firing through the gap
    (`keep_firing_for`) with no transition; the app back: TargetDown resolves."""
    job = "pasargad-prints"
    down = f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere"
    state_path = tmp_path / "state.sqlite3"
    with _AppWithoutItsDatabase(tmp_path, workers=1, DATABASE_URL=down) as app:
        address = app.base_url.removeprefix("http://")
        prom = _shipped_rules_scraping(tmp_path, address)
        env = {
            **database,
            "MONITORING_TOKEN": TOKEN,
            "MONITOR_DATA_DIR": str(tmp_path / "data"),
            "MONITOR_STATE_PATH": str(state_path),
        }
        monitor = MonitorProcess(prom / "prometheus.yml", env)
        try:
            up = f'up{{job="{job}",instance="{address}"}}'
            monitor.wait_for(lambda: _value(monitor, up) == 1, timeout=120)
            before = monitor.wait_for(
                lambda: _alert(monitor, "DatabaseDown", "firing"), timeout=120
            )
            assert "TargetDown" not in _app_alerts(monitor, job)
            # The alert whose cause lasts through the gap (others of the target, on the load of
            # a busy machine, may come and go for real reasons).
            firing = {"DatabaseDown": before}

            killed_ms = time.time() * 1000
            app.kill()
            monitor.wait_for(lambda: _value(monitor, up) == 0, timeout=120)
            pending = monitor.wait_for(lambda: _alert(monitor, "TargetDown", "pending"), 120)
            assert pending["labels"]["instance"] == address
            assert pending["labels"]["severity"] == "critical"
            fired = monitor.wait_for(lambda: _alert(monitor, "TargetDown", "firing"), 120)
            assert fired["activeAt"] == pending["activeAt"]
            monitor.assert_fired_at_first_evaluation_after_for(
                "TargetDown", fired["activeAt"], TARGET_DOWN_FOR_S
            )
            during = _app_alerts(monitor, job)
            for name, alert in firing.items():
                assert name in during and during[name]["state"] == "firing", during
                assert during[name]["activeAt"] == alert["activeAt"], during

            app.launch()
            monitor.wait_for(lambda: _value(monitor, up) == 1, timeout=120)
            monitor.wait_for(lambda: "TargetDown" not in _app_alerts(monitor, job), 120)
            after = _app_alerts(monitor, job)
            for name, alert in firing.items():
                assert name in after and after[name]["state"] == "firing", after
                assert after[name]["activeAt"] == alert["activeAt"], after
            assert after["DatabaseDown"]["activeAt"] == before["activeAt"]
            # Not one evaluation found them pending (resolved, then starting over) since.
            for name in firing:
                again = monitor.evaluations(name, "pending")
                assert all(t < killed_ms for t in again), (name, again)
            monitor.wait_for(
                lambda: ("TargetDown", "firing", "inactive") in _transitions(state_path), 60
            )
        finally:
            assert monitor.stop() == 0
    transitions = _transitions(state_path)
    assert [t for t in transitions if t[0] == "TargetDown"] == [
        ("TargetDown", "inactive", "pending"),
        ("TargetDown", "pending", "firing"),
        ("TargetDown", "firing", "inactive"),
    ]
    for name in firing:
        assert [t for t in transitions if t[0] == name] == [
            (name, "inactive", "pending"),
            (name, "pending", "firing"),
        ], transitions
