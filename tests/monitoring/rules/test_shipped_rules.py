"""The shipped rule files ask for action: every alert says how bad it is, which team it goes to
(issue 10 routes on `team`) and what is wrong, and has promtool-format unit tests; the
monitoring watches itself and the shop's dependencies."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
SEVERITIES = {"critical", "warning", "info", "none"}
TEAMS = {"devops", "development", "product", "security"}  # spec: "Monitoring Responsibilities"


def _alerting_rules() -> list[tuple[str, dict]]:
    rules = []
    for path in sorted(PROMETHEUS.glob("*_rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [(path.name, r) for r in group["rules"] if "alert" in r]
    return rules


def _tested_alertnames() -> set[str]:
    names = set()
    for path in (PROMETHEUS / "tests").glob("*.test.yml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            names |= {t["alertname"] for t in group.get("alert_rule_test") or []}
    return names


def test_every_alert_has_severity_team_summary_and_description():
    problems = []
    for file, rule in _alerting_rules():
        labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{file}: {rule['alert']}: severity {labels.get('severity')!r}")
        if labels.get("team") not in TEAMS:
            problems.append(f"{file}: {rule['alert']}: team {labels.get('team')!r}")
        for key in ("summary", "description"):
            if not annotations.get(key):
                problems.append(f"{file}: {rule['alert']}: no {key}")
    assert not problems, "\n".join(problems)


def test_every_alert_has_unit_tests():
    untested = {r["alert"] for _, r in _alerting_rules()} - _tested_alertnames()
    assert not untested


def test_outages_and_the_monitor_itself_are_watched():
    by_name = {r["alert"]: r for _, r in _alerting_rules()}
    watched = {
        "TargetDown": "up == 0",
        "DatabaseDown": "database_up == 0",
        "RedisDown": "redis_up == 0",
        "CeleryBrokerDown": "celery_broker_up == 0",
        "CeleryWorkersDown": "celery_workers_online == 0",
        "RuleEvaluationFailures": "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
        "ConfigReloadFailed": "prometheus_config_last_reload_successful == 0",
        "Watchdog": "vector(1)",
        "NotificationsFailing": "sum by (job, instance, integration)"
        " (increase(alertmanager_notifications_failed_total[10m])) > 0",
        "NotifierConfigReloadFailed": "alertmanager_config_last_reload_successful == 0",
    }
    assert {name: by_name[name]["expr"].strip() for name in watched if name in by_name} == watched
    assert by_name["Watchdog"]["labels"]["severity"] == "none"
