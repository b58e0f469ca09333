"""The escalation policies file: the shipped one loads against the shipped notifier
configuration; every mistake is refused naming file, line and problem; a bad reload keeps
the last good policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.configfile import ConfigError
from monitoring.escalation.policy import LoadedPolicies, policies_load
from monitoring.notify.config import config_load

REPO = Path(__file__).resolve().parents[3]
GOOD = """\
policies:
  - name: critical
    match: ['severity="critical"']
    levels:
      - level: 1
        after: 0s
        actions:
          - {action: pool_restart}
          - {action: purge_queue, queue: reports}
        receivers: [slack-critical]
      - {level: 2, after: 1m, receivers: [oncall]}
      - {level: 4, after: 5m, receivers: [management], notice: {title: Down, message: Sorry}}
"""


def test_the_shipped_policies_load_against_the_shipped_receivers():
    notify = config_load(REPO / "deploy/alertmanager/alertmanager.yml")
    policies = policies_load(
        REPO / "deploy/alertmanager/escalation.yml", known_receivers=list(notify.receivers)
    )
    critical = policies.match({"alertname": "DatabaseDown", "severity": "critical"})
    assert critical is not None and [lv.number for lv in critical.levels] == [2, 3, 4]
    celery = policies.match({"alertname": "CeleryQueueBacklog", "severity": "warning"})
    assert celery is not None and celery.levels[0].actions[0].kind == "pool_restart"
    assert policies.match({"alertname": "HighCpuUsage", "severity": "warning"}) is None


def test_a_good_file_gives_levels_actions_and_notice(tmp_path):
    policies = policies_load(tmp_path / "e.yml", GOOD)
    (policy,) = policies.policies
    assert [(lv.number, lv.after_ms) for lv in policy.levels] == [(1, 0), (2, 60_000), (4, 300_000)]
    assert policy.levels[0].actions[1].options == {"queue": "reports"}
    assert policy.levels[2].notice == {"title": "Down", "message": "Sorry"}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("policies:\n  - name: a\n    levels:\n      - {level: 5, after: 1m}\n", 4,
         "must be 1, 2, 3 or 4"),
        ("policies:\n  - name: a\n    levels:\n      - {level: 2, after: soon}\n", 4,
         "'soon' is not a duration"),
        ("policies:\n  - name: a\n    match: ['severity=~\"(\"x']\n    levels:\n"
         "      - {level: 2, after: 1m}\n", 3, "match"),
        ("policies:\n  - name: a\n    levels:\n      - level: 1\n        after: 0s\n"
         "        actions:\n          - {action: reboot_the_world}\n", 7, "unknown action"),
        ("policies:\n  - name: a\n    levels:\n      - level: 1\n        after: 0s\n"
         "        actions:\n          - {action: purge_queue}\n", 7, "purge_queue needs queue"),
        ("policies:\n  - name: a\n    levels:\n      - {level: 2, after: 1m, actions: "
         "[{action: pool_restart}]}\n", 4, "only level 1 runs actions"),
        ("policies:\n  - name: a\n    levels:\n      - {level: 3, after: 5m}\n"
         "      - {level: 2, after: 9m}\n", 5, "levels must go up"),
        ("policies:\n  - name: a\n    levels:\n      - {level: 2, after: 1m, receivers: [nobody]}\n",
         4, "no receiver 'nobody'"),
        ("policies:\n  - name: a\n    levels:\n      - {level: 2, after: 1m, colour: red}\n", 4,
         "unknown key 'colour'"),
        ("policies: [\n", 2, "invalid YAML"),
    ],
)  # fmt: skip
def test_a_mistake_is_refused_with_file_and_line(tmp_path, text, line, problem):
    path = tmp_path / "escalation.yml"
    with pytest.raises(ConfigError) as caught:
        policies_load(path, text, known_receivers=["oncall"])
    assert any(e.startswith(f"{path}:{line}:") and problem in e for e in caught.value.errors), (
        caught.value.errors
    )


def test_a_bad_reload_keeps_the_last_good_policies(tmp_path):
    path = tmp_path / "escalation.yml"
    path.write_text(GOOD)
    loaded = LoadedPolicies(path)
    assert loaded.load() == []
    good = loaded.policies
    path.write_text(GOOD.replace("after: 1m", "after: never"))
    errors = loaded.load()
    assert errors and f"{path}:11:" in errors[0]
    assert loaded.policies is good
    path.write_text(GOOD.replace("after: 1m", "after: 2m"))
    assert loaded.load() == [] and loaded.policies.policies[0].levels[1].after_ms == 120_000


def test_check_config_checks_the_policies_beside_the_notifier_file(tmp_path):
    from tests.monitoring.monitor.test_command import monitor_command

    notify = tmp_path / "alertmanager.yml"
    notify.write_text((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    config = str(REPO / "deploy/prometheus/prometheus.yml")
    escalation = tmp_path / "escalation.yml"
    escalation.write_text(GOOD.replace("receivers: [management]", "receivers: [ceo]"))
    result = monitor_command("check-config", "--config", config, "--alertmanager", str(notify))
    assert result.returncode == 1
    assert (
        f"{escalation}:12: policies[0].levels[2].receivers: no receiver 'ceo' in the notifier"
        in result.stderr
    )
    escalation.write_text(GOOD)
    result = monitor_command("check-config", "--config", config, "--alertmanager", str(notify))
    assert result.returncode == 0, result.stderr
    assert f"{escalation}: OK" in result.stdout
