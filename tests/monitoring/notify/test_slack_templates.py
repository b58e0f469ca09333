"""The Slack receivers' `title` and `text`, and the email receivers' `html`, of the file
`render-alertmanager` writes from the shipped one (the shipped templates/), rendered by amtool (Alertmanager 0.25's template
engine) as real Alertmanager renders them: what a Slack message says at scale. The firing case
is also rendered by a real Alertmanager in test_at_scale.py. The embedded notifier reads the
shipped file, where they are unset: it sends its own layout."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from monitoring.notify.amtemplate import TemplateSet, template_data
from monitoring.notify.config import config_load
from monitoring.notify.environment import config_render
from tests.monitoring.notify.channels.sample import notification, payment_alert
from tests.services import require_alertmanager

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
TEMPLATES = ROOT / "deploy" / "alertmanager" / "templates" / "*.tmpl"


def _alert(status: str, instance: str, ends: str) -> dict:
    return {
        "status": status,
        "labels": {
            "alertname": "DatabaseDown",
            "severity": "critical",
            "team": "devops",
            "instance": instance,
        },
        "annotations": {
            "summary": "Database default is down",
            "description": f"{instance} cannot reach database default",
            "runbook_url": "docs/runbooks/DatabaseDown.md",
        },
        "startsAt": "2026-12-05T00:30:00+01:00",
        "endsAt": ends,
    }


def _data(status: str) -> dict:
    zero = "0001-01-01T00:00:00Z"
    alerts = [
        _alert(status, "web-1:8000", zero if status == "firing" else "2026-12-05T00:10:00Z"),
        _alert("resolved", "web-2:8000", "2026-12-05T00:05:00Z"),
    ]
    labels = {"alertname": "DatabaseDown", "team": "devops"}
    return {
        "receiver": "slack-critical",
        "status": status,
        "alerts": alerts,
        "groupLabels": labels,
        "commonLabels": {**labels, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
    }


def _render(template: str, data: dict, tmp_path: Path) -> str:
    (tmp_path / "data.json").write_text(json.dumps(data))
    done = subprocess.run(
        [
            "amtool", "template", "render", f"--template.glob={TEMPLATES}",
            f"--template.text={template}", f"--template.data={tmp_path / 'data.json'}",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.rstrip("\n")


@pytest.mark.parametrize("receiver", ["slack-critical", "slack-warnings"])
def test_the_slack_title_and_text_say_what_fired_and_what_resolved(receiver, tmp_path):
    require_alertmanager()
    assert config_load(SHIPPED, env={}).receivers[receiver].slack_configs[0].title is None
    rendered = config_render(SHIPPED, env={"MONITORING_TOKEN": "t"})
    config = config_load("rendered.yml", env={}, text=rendered)
    [slack] = config.receivers[receiver].slack_configs
    firing = _data("firing")
    assert _render(slack.title, firing, tmp_path) == (
        "[FIRING:1] DatabaseDown (critical, team devops)"
    )
    assert _render(slack.text, firing, tmp_path).splitlines() == [
        "*DatabaseDown* on web-1:8000: Database default is down",
        "web-1:8000 cannot reach database default",
        "Since 2026-12-04 23:30:00 UTC | runbook: docs/runbooks/DatabaseDown.md",
        "*DatabaseDown* on web-2:8000: Database default is down",
        "web-2:8000 cannot reach database default",
        "Since 2026-12-04 23:30:00 UTC, resolved 2026-12-05 00:05:00 UTC"
        " | runbook: docs/runbooks/DatabaseDown.md",
    ]
    resolved = _data("resolved")
    assert _render(slack.title, resolved, tmp_path) == (
        "[RESOLVED] DatabaseDown (critical, team devops)"
    )
    assert "resolved 2026-12-05 00:10:00 UTC" in _render(slack.text, resolved, tmp_path)


def test_the_rendered_slack_text_links_each_firing_alert_to_its_acknowledgement_form(tmp_path):
    """Alertmanager cannot sign the one-click link: each firing alert links to the dashboard's
    acknowledgement form for its fingerprint (alerts.js opens it); a resolved one gets none."""
    require_alertmanager()
    rendered = config_render(
        SHIPPED, env={"MONITORING_TOKEN": "t", "SITE_URL": "https://shop.example/"}
    )
    [slack] = (
        config_load("rendered.yml", env={}, text=rendered).receivers["slack-critical"].slack_configs
    )
    firing = _data("firing")
    firing["alerts"][0]["fingerprint"] = "0123456789abcdef"
    firing["alerts"][1]["fingerprint"] = "fedcba9876543210"
    lines = _render(slack.text, firing, tmp_path).splitlines()
    assert lines[-1] == (
        "Acknowledge <https://shop.example/dashboard/alerts/#ack=0123456789abcdef"
        "|DatabaseDown on web-1:8000>"
    )
    assert not any("fedcba9876543210" in line for line in lines)  # resolved: nothing to ack
    # Without a public URL for the dashboard: the text as before, no link.
    plain = config_render(SHIPPED, env={"MONITORING_TOKEN": "t"})
    [slack] = config_load("plain.yml", env={}, text=plain).receivers["slack-critical"].slack_configs
    assert "Acknowledge" not in _render(slack.text, firing, tmp_path)


def test_the_rendered_email_says_what_fired_and_links_the_acknowledgement_form(tmp_path):
    require_alertmanager()
    assert config_load(SHIPPED, env={}).receivers["oncall"].email_configs[0].html is None
    env = {"MONITORING_TOKEN": "t", "NOTIFY_DASHBOARD_URL": "https://ops.example/dashboard"}
    rendered = config_render(SHIPPED, env=env)
    [email] = config_load("rendered.yml", env={}, text=rendered).receivers["oncall"].email_configs
    firing = _data("firing")
    firing["receiver"] = "oncall"
    firing["alerts"][0]["fingerprint"] = "0123456789abcdef"
    firing["alerts"][1]["fingerprint"] = "fedcba9876543210"
    page = _render(email.html, firing, tmp_path)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "[FIRING:1] DatabaseDown (critical, team devops)" in text
    assert "DatabaseDown on web-1:8000: firing Database default is down" in text
    assert "web-1:8000 cannot reach database default" in text
    assert "Since 2026-12-04 23:30:00 UTC, resolved 2026-12-05 00:05:00 UTC" in text
    assert "Runbook: docs/runbooks/DatabaseDown.md" in text
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
    assert links == [
        (
            "https://ops.example/dashboard/alerts/#ack=0123456789abcdef",
            "DatabaseDown on web-1:8000",
        ),
        ("http://alertmanager:9093/#/alerts?receiver=oncall", "View in Alertmanager"),
    ]
    # A resolved group: nothing to acknowledge, no such section.
    resolved = _data("resolved")
    assert "Acknowledge" not in _render(email.html, resolved, tmp_path)
    # The embedded notifier's template engine renders the same field (a rendered file loaded
    # by it sends this email too).
    templates, errors = TemplateSet.load(sorted(TEMPLATES.parent.glob("*.tmpl")))
    assert not errors
    alert = payment_alert()
    ours = templates.render(email.html, template_data(notification(alert)), html=True)
    assert (
        f'<a href="https://ops.example/dashboard/alerts/#ack={alert.fingerprint}">'
        "HighPaymentFailureRate on web-1</a>"
    ) in ours
