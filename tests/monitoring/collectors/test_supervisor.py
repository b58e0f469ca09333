"""make up's restart counts, exported by the app from scripts/up.py's state file."""

import json
import os
import subprocess
import sys

from prometheus_client import CollectorRegistry, generate_latest

from monitoring.collectors.supervisor import SupervisorCollector


def _exposition(collector: SupervisorCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def _write(path, pid: int) -> None:
    processes = {"web": {"restarts": 0}, "monitor": {"restarts": 2}}
    path.write_text(json.dumps({"pid": pid, "processes": processes}))


def test_restarts_are_counters_from_zero_per_supervised_process(tmp_path):
    path = tmp_path / "supervisor.json"
    _write(path, os.getpid())
    text = _exposition(SupervisorCollector(path))
    assert "# TYPE supervisor_restarts_total counter" in text
    assert 'supervisor_restarts_total{process="monitor"} 2.0' in text
    assert 'supervisor_restarts_total{process="web"} 0.0' in text


def test_nothing_without_a_running_supervisor(tmp_path):
    path = tmp_path / "supervisor.json"
    assert "supervisor_restarts" not in _exposition(SupervisorCollector(path))  # no file
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    _write(path, ended.pid)  # a file left behind by a supervisor that was killed
    assert "supervisor_restarts" not in _exposition(SupervisorCollector(path))
    path.write_text("{not json")
    assert "supervisor_restarts" not in _exposition(SupervisorCollector(path))
