"""`manage.py monitor check-config`, `once` and `test-rules`, as an operator runs them.

One test runs the real `manage.py` process; the others call the same command in-process
(much faster), capturing what it prints and its exit code.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.monitoring.command import Result, monitor_command
from tests.monitoring.monitor.exporter import Exporter

REPO = Path(__file__).resolve().parents[3]
PROM_DIR = REPO / "deploy/prometheus"


def _monitor(*args: str, tmp_path: Path) -> Result:
    return monitor_command(*args)


def test_manage_py_monitor_check_config_as_a_process(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "monitor", "check-config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "prometheus.yml: OK" in result.stdout


@pytest.fixture
def prom_dir(tmp_path) -> Path:
    target = tmp_path / "prometheus"
    shutil.copytree(PROM_DIR, target)
    return target


def test_check_config_reports_every_problem_in_every_file(prom_dir, tmp_path):
    config = prom_dir / "prometheus.yml"
    config.write_text(config.read_text().replace("scrape_interval: 30s", "scrape_interval: soon"))
    thresholds = prom_dir / "thresholds.yml"
    thresholds.write_text(
        thresholds.read_text().replace("blocked_clients: 10", "blocked_clients: ten")
    )
    rules = prom_dir / "threshold_rules.yml"
    text = rules.read_text()
    rule_line = text[: text.index("expr: redis_blocked_clients")].count("\n") + 1
    rules.write_text(
        text.replace("expr: redis_blocked_clients >", "expr: redis_blocked_clients >>")
    )
    result = _monitor("check-config", "--config", str(config), tmp_path=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert (
        f"{config}:16: scrape_configs[pasargad-prints].scrape_interval: 'soon' is not a positive duration (like 15s, 1m, 2h)"
        in lines
    )
    assert f"{thresholds}:19: redis.blocked_clients: expected a number, got 'ten'" in lines
    assert any(
        line.startswith(f"{rules}:{rule_line}: rule 'RedisBlockedClients'") for line in lines
    ), lines
    assert all(line.split(":")[1].isdigit() for line in lines), lines


def test_check_config_flags_rule_files_out_of_date_with_the_thresholds(prom_dir, tmp_path):
    thresholds = prom_dir / "thresholds.yml"
    thresholds.write_text(thresholds.read_text().replace("cpu_percent: 85", "cpu_percent: 70"))
    result = _monitor(
        "check-config", "--config", str(prom_dir / "prometheus.yml"), tmp_path=tmp_path
    )
    assert result.returncode == 1
    assert f"{prom_dir / 'alert_rules.yml'}:1: out of date with thresholds.yml" in result.stderr


def test_once_scrapes_evaluates_and_prints_what_would_fire(tmp_path):
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - alert: HighCpuUsage\n        expr: cpu_usage_percent > 85\n        for: 5m\n"
        "        annotations: {summary: High CPU usage detected}\n"
        "      - alert: DiskFull\n        expr: disk_usage_percent > 85\n"
    )
    with Exporter() as exporter:
        exporter.body = "cpu_usage_percent 97\ndisk_usage_percent 90\n"
        (tmp_path / "prometheus.yml").write_text(
            "rule_files: [rules.yml]\n"
            f"scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        )
        result = _monitor("once", "--config", str(tmp_path / "prometheus.yml"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"target http://{exporter.address}/metrics: up" in out
    assert (
        "HighCpuUsage" in out
        and "value=97 pending (fires after for: 300s) High CPU usage detected" in out
    )
    assert "DiskFull" in out and "value=90 firing" in out


def test_test_rules_runs_the_shipped_rule_tests_like_promtool(tmp_path):
    files = [
        str(PROM_DIR / "tests" / name)
        for name in ("alert_rules.test.yml", "threshold_rules.test.yml")
    ]
    result = _monitor("test-rules", *files, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 2


def test_test_rules_fails_and_shows_expected_and_actual(tmp_path):
    test = tmp_path / "cpu.test.yml"
    text = (PROM_DIR / "tests/alert_rules.test.yml").read_text()
    test.write_text(
        text.replace("../alert_rules.yml", str(PROM_DIR / "alert_rules.yml")).replace(
            "- eval_time: 5m\n        alertname: HighCpuUsage",
            "- eval_time: 4m\n        alertname: HighCpuUsage",
            1,
        )
    )
    result = _monitor("test-rules", str(test), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "exp:" in result.stdout and "got:" in result.stdout


def test_once_warns_when_the_rule_files_are_stale(prom_dir, tmp_path, caplog):
    thresholds = prom_dir / "thresholds.yml"
    thresholds.write_text(thresholds.read_text().replace("cpu_percent: 85", "cpu_percent: 50"))
    with Exporter() as exporter:
        exporter.body = "cpu_usage_percent 60\n"
        config = prom_dir / "prometheus.yml"
        config.write_text(config.read_text().replace("localhost:8000", exporter.address))
        result = _monitor("once", "--config", str(config), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alert_rules.yml is out of date with thresholds.yml" in caplog.text
    # The running rules are still the rendered ones (85), so 60% does not fire.
    assert "HighCpuUsage" not in result.stdout
