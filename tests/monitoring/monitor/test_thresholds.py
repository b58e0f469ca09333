"""The thresholds file: validated with file:line, and the committed rule files rendered from it."""

import io
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from monitoring.configfile import ConfigError
from monitoring.monitor.thresholds import (
    rules_render,
    rules_stale,
    template_render,
    template_thresholds_used,
)
from monitoring.thresholds import DEFAULTS, SCHEMA, thresholds_load
from tests.services import require_prometheus

REPO = Path(__file__).resolve().parents[3]
PROM_DIR = REPO / "deploy/prometheus"
OUR_TESTS = ("alert_rules.test.yml", "threshold_rules.test.yml")


def test_the_shipped_thresholds_are_the_specifications_values():
    thresholds = thresholds_load(PROM_DIR / "thresholds.yml")
    assert thresholds["system"] == {
        "cpu_percent": 85,
        "memory_percent": 85,
        "disk_percent": 85,
        "load_average": 2.0,
    }
    assert thresholds["database"]["deadlock_threshold"] == 5
    assert thresholds["redis"]["hit_rate_threshold"] == 85
    assert thresholds["application"]["response_time"] == 5000
    assert thresholds["business"]["low_stock_threshold"] == 10
    # What a process uses until it has read a good file is the same numbers.
    assert thresholds == DEFAULTS


def test_the_committed_rule_files_are_rendered_from_the_current_thresholds():
    stale = rules_stale(prometheus_dir=PROM_DIR)
    assert stale == [], f"run `python manage.py monitor render-rules` ({stale})"


def test_the_rendered_alert_rules_are_the_specifications_rules():
    spec_rules = yaml.safe_load((PROM_DIR / "alert_rules.yml").read_text())
    by_name = {r["alert"]: r for g in spec_rules["groups"] for r in g["rules"]}
    assert by_name["HighCpuUsage"]["expr"] == "cpu_usage_percent > 85"
    assert by_name["SlowResponseTime"]["annotations"]["description"] == (
        "95th percentile response time is above 5 seconds"
    )
    assert [g["name"] for g in spec_rules["groups"]] == ["system", "application", "database"]
    assert len(by_name) == 7


def test_every_threshold_is_used_by_some_rule():
    used = set()
    for template in (PROM_DIR / "templates").glob("*.yml"):
        used |= template_thresholds_used(template.read_text())
    every = {(section, key) for section, keys in SCHEMA.items() for key in keys}
    assert every - used == set()


def test_changing_a_threshold_changes_the_rendered_rules(tmp_path):
    shutil.copytree(PROM_DIR / "templates", tmp_path / "templates")
    text = (PROM_DIR / "thresholds.yml").read_text().replace("cpu_percent: 85", "cpu_percent: 12.5")
    (tmp_path / "thresholds.yml").write_text(text)
    assert sorted(p.name for p in rules_stale(prometheus_dir=tmp_path)) == [
        "alert_rules.yml",
        "threshold_rules.yml",
    ]
    rules_render(prometheus_dir=tmp_path)
    rendered = (tmp_path / "alert_rules.yml").read_text()
    assert "expr: cpu_usage_percent > 12.5\n" in rendered
    assert "CPU usage is above 12.5% for more than 5 minutes" in rendered
    assert rules_stale(prometheus_dir=tmp_path) == []


def test_prometheus_templating_is_left_alone():
    text = (
        'description: "{{ $value }} above {{ thresholds.system.load_average }} ({{ $labels.x }})"'
    )
    assert template_render(text, {"system": {"load_average": 2.0}}) == (
        'description: "{{ $value }} above 2 ({{ $labels.x }})"'
    )


def test_an_unknown_threshold_in_a_template_is_refused_with_its_line():
    with pytest.raises(ConfigError, match=r"^t.yml:2: unknown threshold system.cpu$"):
        template_render("a\nb {{ thresholds.system.cpu }}", {"system": {}}, source="t.yml")


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (
            ("cpu_percent: 85", "cpu_percent: high"),
            6,
            "system.cpu_percent: expected a number, got 'high'",
        ),
        (("load_average: 2.0", "load_avg: 2.0"), 9, "system: unknown key 'load_avg'"),
        (("blocked_clients: 10", "blocked_clients: -1"), 19, "must not be negative"),
        (("error_rate: 5.0 ", "error_rate: 500 "), 22, "a percentage cannot exceed 100"),
        (("business:", "busyness:"), 26, "thresholds: unknown key 'busyness'"),
        (("  queue_length: 100", "  queue_length: [100]"), 24, "expected a number, got a list"),
    ],
)
def test_bad_thresholds_are_refused_with_file_line_and_problem(tmp_path, edit, line, problem):
    path = tmp_path / "thresholds.yml"
    path.write_text((PROM_DIR / "thresholds.yml").read_text().replace(*edit))
    with pytest.raises(ConfigError) as exc:
        thresholds_load(path)
    assert any(e.startswith(f"{path}:{line}: ") and problem in e for e in exc.value.errors), (
        exc.value.errors
    )


def test_a_missing_section_is_refused(tmp_path):
    path = tmp_path / "thresholds.yml"
    path.write_text(
        "system: {cpu_percent: 1, memory_percent: 1, disk_percent: 1, load_average: 1}\n"
    )
    with pytest.raises(
        ConfigError, match=r"thresholds.yml:1: thresholds: missing application, business"
    ):
        thresholds_load(path)


@pytest.mark.prometheus
def test_promtool_accepts_every_rendered_rule_file_and_its_unit_tests():
    require_prometheus()
    rule_files = sorted(str(p) for p in PROM_DIR.glob("*_rules.yml"))
    check = subprocess.run(
        ["promtool", "check", "rules", *rule_files], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        ["promtool", "test", "rules", *(str(PROM_DIR / "tests" / f) for f in OUR_TESTS)],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_render_rules_command_reports_stale_files(tmp_path):
    shutil.copytree(PROM_DIR / "templates", tmp_path / "templates")
    shutil.copy(PROM_DIR / "thresholds.yml", tmp_path / "thresholds.yml")

    def render(*extra: str) -> tuple[int, str]:
        out = io.StringIO()
        try:
            call_command(
                "monitor", "render-rules", "--dir", str(tmp_path), *extra, stdout=out, stderr=out
            )
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue()
        return 0, out.getvalue()

    code, output = render("--check")
    assert code == 1 and "out of date" in output
    code, output = render()
    assert code == 0 and "wrote" in output
    assert render("--check") == (0, "")
