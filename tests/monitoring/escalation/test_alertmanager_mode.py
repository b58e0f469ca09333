"""Escalation in Alertmanager mode: alerts real Alertmanager posts to the app's receiver are
recorded in the state file, and the app's periodic task (`monitoring.escalation.escalate`,
ESCALATION_IN_APP) climbs them through the app's notifier configuration to real SMTP and SMS
receivers; an Alertmanager resolution ends the escalation."""

from __future__ import annotations

import email
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from monitoring import tasks
from tests.monitoring.notify.drill_receivers import Receivers, shipped_notify_config
from tests.wait import wait_for

pytestmark = pytest.mark.django_db

POLICIES = """\
policies:
  - name: critical
    match: ['severity="critical"']
    levels:
      - {level: 2, after: 0s, receivers: [oncall]}
      - {level: 3, after: 1h, receivers: [senior-engineer]}
"""
TOKEN = "am-mode-token"


def _webhook(status: str, starts: datetime, ends: datetime | None = None) -> dict:
    alert = {
        "status": status,
        "labels": {"alertname": "DatabaseDown", "severity": "critical", "team": "devops"},
        "annotations": {"summary": "The database is down"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": (ends or datetime(1, 1, 1, tzinfo=UTC)).isoformat().replace("+00:00", "Z"),
        "generatorURL": "",
        "fingerprint": "x",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DatabaseDown"}',
        "status": status,
        "receiver": "dashboard",
        "groupLabels": {"alertname": "DatabaseDown"},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager.test",
        "alerts": [alert],
        "truncatedAlerts": 0,
    }


@pytest.fixture
def receivers(tmp_path, monkeypatch, settings):
    got = Receivers(tmp_path / "state.sqlite3")
    notify = shipped_notify_config(tmp_path / "alertmanager.yml")
    (tmp_path / "escalation.yml").write_text(POLICIES)
    for name, value in {
        **got.env(notify),
        "MONITOR_STATE_PATH": str(got.state),
        "ESCALATION_CONFIG": str(tmp_path / "escalation.yml"),
        "ACK_BASE_URL": "http://shop.test",
    }.items():
        monkeypatch.setenv(name, value)
    settings.NOTIFY_CONFIG = notify
    settings.MONITORING_TOKEN = TOKEN
    settings.ESCALATION_IN_APP = True
    yield got
    got.close()


def _post(client, document: dict) -> None:
    answer = client.post(
        "/api/monitoring/alertmanager/",
        json.dumps(document),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert answer.status_code == 200, answer.content


def _events(state) -> list[tuple[str, int | None]]:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT kind, level FROM alert_event ORDER BY id").fetchall()


def test_the_app_task_escalates_what_alertmanager_sent_and_ends_on_its_resolution(
    client, receivers, settings
):
    starts = datetime.now(UTC) - timedelta(seconds=5)
    _post(client, _webhook("firing", starts))
    settings.ESCALATION_IN_APP = False
    assert tasks.escalate() == []  # embedded mode: the monitor's loop does it, not the app
    settings.ESCALATION_IN_APP = True
    done = tasks.escalate()
    assert done == ["DatabaseDown: level 2"]
    assert tasks.escalate() == []  # once

    def sms() -> str | None:
        for request in receivers.sms.requests:
            return parse_qs(request.body.decode())["Body"][0]
        return None

    body = wait_for(sms, timeout=30)
    assert body.startswith("L2 CRITICAL DatabaseDown") and "Ack: http://shop.test/ack/" in body
    (mail,) = [email.message_from_bytes(m[2]) for m in receivers.smtp_messages]
    assert mail["To"] == "oncall@pasargadprints.com"
    assert (
        "Escalation level 2 (on-call engineer)"
        in mail.get_payload()[0].get_payload(decode=True).decode()
    )

    _post(client, _webhook("resolved", starts, datetime.now(UTC)))
    assert tasks.escalate() == ["DatabaseDown: escalation ended (resolved)"]
    assert _events(receivers.state) == [("level", 2), ("notify", 2), ("end", None)]
