"""`manage.py maintenance windows` against a real Alertmanager 0.25 running the shipped file
(rendered as `monitor render-alertmanager` does): its configuration comes back from
/api/v2/status with defaults filled in and secrets hidden; the command still finds the
recurring windows, and lists a one-off window (a silence) with the alerts it mutes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from io import StringIO

import httpx
from django.core.management import call_command

from maintenance.alertmanager import Alertmanager, iso
from monitoring.notify.environment import config_render
from tests.monitoring.notify.real_alertmanager import alertmanager  # noqa: F401
from tests.monitoring.notify.test_amtool_agreement import SHIPPED


def test_the_windows_of_a_real_alertmanager(alertmanager, tmp_path):  # noqa: F811
    nowhere = "http://127.0.0.1:9"
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": "9", "APP_URL": nowhere}
    env |= {"MONITORING_TOKEN": "token", "SLACK_WEBHOOK_URL": f"{nowhere}/s"}
    env |= {"WATCHDOG_WEBHOOK_URL": f"{nowhere}/w"}
    (tmp_path / "am.yml").write_text(config_render(SHIPPED, env))
    shutil.copytree(SHIPPED.parent / "templates", tmp_path / "templates")
    url = alertmanager(tmp_path / "am.yml")
    now = datetime.now(UTC)
    client = Alertmanager(url)
    silence_id = client.silence_create(
        {
            "matchers": [
                {"name": "alertname", "value": "HighErrorRate|OutboxBacklog", "isRegex": True}
            ],
            "startsAt": iso(now),
            "endsAt": iso(now + timedelta(hours=1)),
            "createdBy": "alice",
            "comment": "upgrade",
        }
    )
    alerts = [
        {"alertname": "HighErrorRate", "severity": "critical", "team": "development"},
        {"alertname": "DatabaseDown", "severity": "critical", "team": "devops"},
    ]
    ends = iso(now + timedelta(hours=1))
    httpx.post(
        f"{url}/api/v2/alerts", json=[{"labels": a, "endsAt": ends} for a in alerts]
    ).raise_for_status()

    out = StringIO()
    call_command("maintenance", "windows", "--json", alertmanager_url=url, stdout=out)
    report = json.loads(out.getvalue())
    assert {w["name"] for w in report["recurring"]} == {
        "weekly-database-maintenance",
        "monthly-security-patches",
        "quarterly-upgrades",
    }
    assert all(len(w["routes"]) >= 3 for w in report["recurring"])
    [window] = report["silences"]
    assert (window["id"], window["createdBy"], window["comment"]) == (
        silence_id,
        "alice",
        "upgrade",
    )
    assert [m["alertname"] for m in window["mutes"]] == ["HighErrorRate"]

    text = StringIO()
    call_command("maintenance", "windows", alertmanager_url=url, stdout=text)
    assert f"silence {silence_id} (active) by alice" in text.getvalue()
    assert '  muting {alertname="HighErrorRate"' in text.getvalue()

    client.silence_expire(silence_id, by="alice")  # Alertmanager ignores `by`
    assert client.silence(silence_id)["status"]["state"] == "expired"
    out = StringIO()
    call_command("maintenance", "windows", "--json", alertmanager_url=url, stdout=out)
    assert json.loads(out.getvalue())["silences"] == []
