"""Routing agrees with `amtool config routes test` (Alertmanager 0.25) on generated alerts.

Each label set is one amtool process; a small pool runs them side by side. The label sets mix
the shipped rules' own (alertname, severity, team) with values chosen to hit every branch of
the files: regex edges, empty and missing labels, quotes, commas and backslashes in values.
"""

from __future__ import annotations

import dataclasses
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from monitoring.notify.config import config_load
from monitoring.notify.matchers import parse_labels
from monitoring.notify.routing import Route
from tests.services import require_alertmanager

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
TANGLED = Path(__file__).parent / "tangled.yml"
LABEL_SETS = 520

POOLS = {
    "alertname": [
        "Watchdog",
        "TargetDown",
        "HighCpuUsage",
        "BruteForceLogins",
        "bruteforce",
        "BRUTE",
        "InfoInhibitor",
        "MaintenanceWindow",
        "",
    ],
    "severity": ["critical", "warning", "info", "none", "", "Critical", "critical "],
    "team": ["devops", "development", "dev", "product", "security", "developmentx", ""],
    "service": ["db", "redis", "dbx", "web,api", "web", ""],
    "instance": ["localhost:8000", "host:9100", "host:9", "db:90", ""],
    "env": ["staging", "prod", ""],
    "job": ["pasargad", "prometheus"],
    "note": ['say "hi"', "back\\slash", "a,b", "line\nbreak", "ünï", "  padded"],
}


def shipped_rule_labels() -> list[dict[str, str]]:
    out = []
    for path in sorted((ROOT / "deploy" / "prometheus").glob("*_rules.yml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    out.append({"alertname": rule["alert"], **(rule.get("labels") or {})})
    return out


def generated(seed: int, base: list[dict[str, str]]) -> list[dict[str, str]]:
    rng = random.Random(seed)
    # Every team with every severity and nothing else, then the rules' own, then random ones.
    sets = [{"team": t, "severity": s} for t in POOLS["team"] for s in POOLS["severity"]]
    sets += [dict(labels) for labels in base]
    while len(sets) < LABEL_SETS:
        labels = dict(rng.choice(base)) if base and rng.random() < 0.5 else {}
        for name, values in POOLS.items():
            if rng.random() < 0.55:
                labels[name] = rng.choice(values)
        sets.append(labels)
    return sets


def as_args(labels: dict[str, str]) -> list[str]:
    """amtool's `name="value"` arguments (OpenMetrics escapes), some left unquoted."""
    args = []
    for name, value in labels.items():
        if value.isalnum():
            args.append(f"{name}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
            args.append(f'{name}="{escaped}"')
    return args


def amtool_receivers(config: Path, args: list[str]) -> str:
    done = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={config}", "--", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("config, seed", [(SHIPPED, 1), (TANGLED, 2)], ids=["shipped", "tangled"])
def test_routing_agrees_with_amtool(config: Path, seed: int) -> None:
    require_alertmanager()
    route = Route.build(config_load(config, env={}).route)
    label_sets = generated(seed, shipped_rule_labels())
    arg_lists = [as_args(labels) for labels in label_sets]
    with ThreadPoolExecutor(max_workers=4) as pool:
        expected = list(pool.map(lambda args: amtool_receivers(config, args), arg_lists))
    disagreements = []
    receivers_seen = set()
    for labels, args, want in zip(label_sets, arg_lists, expected, strict=True):
        assert parse_labels(args) == labels  # the arguments read back as amtool reads them
        got = ",".join(route.receivers(labels))
        receivers_seen.update(want.split(","))
        if got != want:
            disagreements.append(f"{labels}: amtool {want!r}, ours {got!r}")
    assert not disagreements, "\n".join(disagreements[:20])
    # The label sets reach every receiver the tree names, so no branch went untested.
    named = {r.options.receiver for r in route.walk()}
    assert named <= receivers_seen, named - receivers_seen


@pytest.mark.parametrize("config", [SHIPPED, TANGLED], ids=["shipped", "tangled"])
def test_amtool_accepts_the_file(config: Path) -> None:
    require_alertmanager()
    done = subprocess.run(
        ["amtool", "check-config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config_load(config, env={})  # and so do we


def test_amtool_accepts_the_rendered_file(tmp_path: Path) -> None:
    require_alertmanager()
    from monitoring.notify.environment import config_render

    env = {
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": "2525",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XYZ",
        "WATCHDOG_WEBHOOK_URL": "https://deadman.example.com/ping/abc",
        "APP_URL": "https://shop.example.com",
        "MONITORING_TOKEN": "s3cret",
    }
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(config_render(SHIPPED, env))
    done = subprocess.run(
        ["amtool", "check-config", str(rendered)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = config_load(rendered, env={})
    assert config.global_.smtp_smarthost == "smtp.example.com:2525"
    assert config.global_.slack_api_url == env["SLACK_WEBHOOK_URL"]
    hooks = {r.name: r.webhook_configs for r in config.receivers.values()}
    assert hooks["deadmans-switch"][0].url == env["WATCHDOG_WEBHOOK_URL"]
    assert hooks["oncall"][0].url == "https://shop.example.com/api/monitoring/alertmanager/sms"
    assert hooks["oncall"][0].http_config.authorization_credentials == "s3cret"
    # The embedded notifier, applying the same environment to the shipped file, reads the same,
    # but for the Slack title and text and the email HTML: the rendered file points them at
    # the shipped templates (Alertmanager's own Slack text is empty, its email cannot carry
    # our links; the embedded notifier has its own layout).
    applied = config_load(SHIPPED, env=env)
    assert (applied.global_, applied.route) == (config.global_, config.route)
    for name, receiver in config.receivers.items():
        slack = tuple(dataclasses.replace(s, title=None, text=None) for s in receiver.slack_configs)
        mail = tuple(dataclasses.replace(e, html=None) for e in receiver.email_configs)
        assert (
            dataclasses.replace(receiver, slack_configs=slack, email_configs=mail)
            == applied.receivers[name]
        )
        assert all(s.title and s.text for s in receiver.slack_configs)
        assert all(e.html for e in receiver.email_configs)


def test_the_token_replaces_other_auth_on_webhooks_to_the_app(tmp_path: Path) -> None:
    """Alertmanager refuses two kinds of auth on one webhook, and the app takes the bearer
    token only: tangled.yml's basic_auth on an app webhook goes."""
    require_alertmanager()
    from monitoring.notify.environment import config_render

    env = {"APP_URL": "https://shop.example.com", "MONITORING_TOKEN": "s3cret"}
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(config_render(TANGLED, env))
    done = subprocess.run(
        ["amtool", "check-config", str(rendered)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [hook] = config_load(rendered, env={}).receivers["security-oncall"].webhook_configs
    assert hook.http_config.authorization_credentials == "s3cret"
    assert hook.http_config.basic_auth_username is None


def test_the_rendered_copy_elsewhere_keeps_its_templates_and_files(tmp_path: Path) -> None:
    """Alertmanager reads template globs and `*_file` paths relative to the file naming them;
    the rendered copy lives elsewhere ($VAR_DIR), so they are written absolute."""
    from monitoring.notify.environment import config_render

    source = tmp_path / "conf" / "alertmanager.yml"
    (source.parent / "templates").mkdir(parents=True)
    (source.parent / "templates" / "x.tmpl").write_text('{{ define "x" }}x{{ end }}')
    (source.parent / "slack_url").write_text("https://hooks.slack.com/services/T/B/C\n")
    source.write_text(
        "global: {slack_api_url_file: slack_url}\n"
        "templates: [templates/*.tmpl]\n"
        "route: {receiver: r}\n"
        "receivers: [{name: r, slack_configs: [{channel: '#x'}]}]\n"
    )
    rendered = tmp_path / "var" / "alertmanager.yml"
    rendered.parent.mkdir()
    rendered.write_text(config_render(source, {}))
    original, copy = config_load(source, env={}), config_load(rendered, env={})
    assert copy.templates == original.templates == (source.parent / "templates" / "x.tmpl",)
    assert copy.global_.slack_api_url_file == str(source.parent / "slack_url")
    assert "/conf/templates/*.tmpl" in rendered.read_text()
