"""Acceptance: the real app under simulated traffic, an induced resource fault, the right alert.

The app runs under gunicorn with simulated shop traffic; `monitor run` scrapes it every 2 s and
evaluates every second, with the shipped configuration's rule files rendered from a thresholds
file whose limit sits just above the machine's current use, and the alert's `for` shortened to
3 s. The fault (processes burning every CPU, or one taking a few GB of memory) makes the alert
go pending, then firing within one evaluation interval of `for`; ending it resolves the alert.
The transitions land in the monitor's state file.

The CPU case needs a machine whose CPUs are not already near saturation by other work (the
limit must fit between the background and 100 %); on a machine without that room it is
skipped locally and fails under CI=true, like a missing service.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import psutil
import pytest

from monitoring.monitor.thresholds import rules_render
from tests.gunicorn import ROOT, Gunicorn
from tests.monitoring.monitor.test_run import MonitorProcess
from tests.services import require

pytestmark = pytest.mark.slow

FOR_S = 3
EVAL_S = 1
SCRAPE_S = 2


def _prometheus_dir(tmp, app_address: str):
    prom = tmp / "prometheus"
    shutil.copytree(ROOT / "deploy/prometheus", prom, ignore=shutil.ignore_patterns("tests"))
    config = (prom / "prometheus.yml").read_text()
    config = config.replace("localhost:8000", app_address)
    # Scrapes every 2 s (timeout 2 s): on a busy machine the app may need more than 1 s.
    config = re.sub(r"scrape_interval: \w+", f"scrape_interval: {SCRAPE_S}s", config)
    config = re.sub(r"evaluation_interval: \w+", f"evaluation_interval: {EVAL_S}s", config)
    (prom / "prometheus.yml").write_text(config)
    return prom


@dataclass(frozen=True)
class Fault:
    threshold: str  # the key under `system:` in thresholds.yml
    alertname: str
    metric: str
    margin: float  # the limit: this far above the highest use of the last 10 s
    ceiling: float  # the highest limit the fault still clears every time
    description: str  # the rendered annotation, with {limit}

    def start(self) -> list[subprocess.Popen]:
        if self.threshold == "cpu_percent":
            return [
                subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(os.cpu_count() or 1)
            ]
        total = psutil.virtual_memory().total
        hog = subprocess.Popen(
            [sys.executable, "-c", HOG, str(int(total * 0.09))], stdout=subprocess.PIPE, text=True
        )
        assert hog.stdout.readline().strip() == "ready"
        return [hog]


CPU = Fault(
    "cpu_percent", "HighCpuUsage", "cpu_usage_percent", 15, 85,
    "CPU usage is above {limit:g}% for more than 5 minutes",
)  # fmt: skip
MEMORY = Fault(
    "memory_percent", "HighMemoryUsage", "memory_usage_percent", 4, 95,
    "Memory usage is above {limit:g}% for more than 5 minutes",
)  # fmt: skip


def _set_threshold(prom, fault: Fault, percent: float) -> None:
    thresholds = prom / "thresholds.yml"
    pattern = rf"{fault.threshold}: [\d.]+"
    text = re.sub(pattern, f"{fault.threshold}: {percent:g}", thresholds.read_text())
    thresholds.write_text(text)
    rules_render(prometheus_dir=prom)
    # The fault must show within seconds: shorten the alert's `for` and `keep_firing_for`
    # (and only its).
    rules = prom / "alert_rules.yml"
    text = rules.read_text()
    start = text.index(f"- alert: {fault.alertname}")
    head, rule = text[:start], text[start:]
    rule = rule.replace("keep_firing_for: 2m", f"keep_firing_for: {EVAL_S}s", 1)
    rules.write_text(head + rule.replace("for: 5m", f"for: {FOR_S}s", 1))


def _value(monitor: MonitorProcess, expr: str) -> float | None:
    result = monitor.client.get("/api/v1/query", params={"query": expr}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _alerts(monitor: MonitorProcess, fault: Fault, state: str) -> list[dict]:
    return [
        a
        for a in monitor.alerts()
        if a["labels"]["alertname"] == fault.alertname and a["state"] == state
    ]


HOG = """
import sys, time
block = b"\\x01" * int(sys.argv[1])  # written, so every page is really taken
print("ready", flush=True)
time.sleep(120)
"""


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


# The CPU fault needs the machine's CPUs below its limit: it runs alone (`make test` runs the
# `alone` tests after the parallel ones).
@pytest.mark.parametrize(
    "fault",
    [pytest.param(CPU, id="cpu", marks=pytest.mark.alone), pytest.param(MEMORY, id="memory")],
)
def test_a_fault_goes_pending_then_firing_then_resolves(tmp_path, fault):
    processes: list[subprocess.Popen] = []
    with Gunicorn(tmp_path, workers=2) as app:
        simulator = subprocess.Popen(
            [
                sys.executable, "manage.py", "simulate_traffic", "--base-url", app.base_url,
                "--rate", "5", "--duration", "120", "--concurrency", "2",
            ],
            cwd=ROOT, env=app.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        prom = _prometheus_dir(tmp_path, app.base_url.removeprefix("http://"))
        env = {**app.env, "MONITOR_LISTEN": "127.0.0.1:0", "PYTHONUNBUFFERED": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        monitor = MonitorProcess(prom / "prometheus.yml", env)
        try:
            # The machine's use now (other work shares it): the limit goes just above.
            monitor.wait_for(
                lambda: _value(monitor, f"count_over_time({fault.metric}[10s]) >= 3"), 20
            )
            # The processes just started (app workers, simulator, monitor) load the CPUs for a
            # few seconds: give the background up to 30 s to leave room for a limit.
            deadline = time.monotonic() + 30
            while True:
                baseline = _value(monitor, f"max_over_time({fault.metric}[10s])")
                limit = round(baseline + fault.margin, 1)
                if limit <= fault.ceiling:
                    break
                if time.monotonic() > deadline:
                    # Under CI=true this fails: the machine must leave room for the fault.
                    require(f"room for a limit ({fault.metric} stays at {baseline:g})", False)
                time.sleep(1)
            _set_threshold(prom, fault, limit)
            assert monitor.client.post("/-/reload", timeout=30).status_code == 200
            assert not _alerts(monitor, fault, "pending") and not _alerts(monitor, fault, "firing")

            processes = fault.start()
            # Pending lasts `for` (3 s): a poll of a loaded machine can come only after it,
            # when the alert fires. Then the first one seen is the firing one; the recorded
            # transitions below still show it went inactive -> pending -> firing.
            (seen,) = monitor.wait_for(
                lambda: _alerts(monitor, fault, "pending") + _alerts(monitor, fault, "firing"), 60
            )
            assert float(seen["value"]) > limit
            assert seen["annotations"]["description"] == fault.description.format(limit=limit)
            (firing,) = monitor.wait_for(lambda: _alerts(monitor, fault, "firing"), 60)
            assert firing["activeAt"] == seen["activeAt"]
            # Firing at the first evaluation at or after activeAt + for, however late a busy
            # machine ran it (read from the ALERTS samples the monitor wrote).
            monitor.assert_fired_at_first_evaluation_after_for(
                fault.alertname, firing["activeAt"], FOR_S
            )
            assert firing["labels"]["severity"] == "warning"

            _stop(processes)
            monitor.wait_for(lambda: not _alerts(monitor, fault, "firing"), 60)
            assert monitor.stop() == 0
        finally:
            _stop(processes)
            monitor.stop()
            simulator.terminate()
            simulator.wait(timeout=10)
        with sqlite3.connect(tmp_path / "monitor" / "state.sqlite3") as db:
            rows = db.execute(
                "SELECT from_state, to_state, active_at_ms, fired_at_ms"
                " FROM alert_transition WHERE alertname = ? ORDER BY id",
                (fault.alertname,),
            ).fetchall()
        # The fault's own episode, recorded whole. Before it, the background (other work on a
        # shared machine) may have crossed a limit set just above it for a moment: such a blip
        # can only be pending then gone, never firing.
        episode = rows[-3:]
        assert [row[:2] for row in episode] == [
            ("inactive", "pending"),
            ("pending", "firing"),
            ("firing", "inactive"),
        ]
        assert [row[:2] for row in rows[:-3]] == [
            ("inactive", "pending"),
            ("pending", "inactive"),
        ] * ((len(rows) - 3) // 2)
        # The recorded times agree: fired at or after activeAt + for.
        active_at, fired_at = episode[1][2:]
        assert (fired_at - active_at) / 1000 >= FOR_S
        # The app really served the simulated shop traffic while all this happened.
        assert httpx.get(f"{app.base_url}/api/catalog/products/").status_code == 200
