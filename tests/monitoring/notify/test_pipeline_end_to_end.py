"""End to end: a real `manage.py monitor run` with a rule that fires, the shipped
alertmanager.yml (group_interval shortened so the resolution need not wait 5 minutes), its
endpoints from the environment pointing at real local servers: an SMTP server (aiosmtpd) and a
recording HTTP server for Slack and the SMS API; the dashboard channel writes the state file.
The firing notification arrives once at each, the resolved notice follows the fix."""

# ruff: noqa: F811 (the fixtures imported from test_run are parameters below)
from __future__ import annotations

import email
import json
import sqlite3
from urllib.parse import parse_qs

import pytest

from tests.monitoring.monitor.test_run import (  # noqa: F401 (fixtures)
    REPO,
    MonitorProcess,
    _state_file,
    database,
    exporter,
)
from tests.monitoring.notify.channels.servers import HttpReceiver, SmtpServer

pytestmark = pytest.mark.slow

RULES = """\
groups:
  - name: payments
    rules:
      - alert: HighPaymentFailureRate
        expr: payment_failure_percent > 10
        for: 1s
        labels: {severity: critical, team: devops}
        annotations:
          summary: "High payment failure rate"
          description: "{{ $value }}% of payments failed"
"""


@pytest.fixture
def servers():
    smtp, http = SmtpServer(), HttpReceiver()
    yield smtp, http
    smtp.close()
    http.close()


def _status_of_mail(data: bytes) -> str:
    return email.message_from_bytes(data)["X-Alert-Status"]


def test_a_firing_alert_is_told_once_everywhere_and_its_resolution_follows(
    tmp_path, exporter, database, servers
):
    smtp, http = servers
    for path in _state_file(database).parent.glob("state.sqlite3*"):
        path.unlink()
    exporter.body = "payment_failure_percent 25\n"
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 300ms, evaluation_interval: 300ms}\n"
        "rule_files: ['rules.yml']\n"
        "scrape_configs:\n  - job_name: app\n"
        f"    static_configs: [{{targets: ['{exporter.address}']}}]\n"
    )
    shipped = (REPO / "deploy/alertmanager/alertmanager.yml").read_text()
    assert "  group_interval: 5m\n" in shipped
    notify_config = tmp_path / "alertmanager.yml"
    notify_config.write_text(shipped.replace("  group_interval: 5m\n", "  group_interval: 1s\n"))
    env = {
        **database,
        "NOTIFY_CONFIG": str(notify_config),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "SLACK_WEBHOOK_URL": f"{http.url}/slack",
        "SMS_API_URL": f"{http.url}/sms",
        "SMS_ACCOUNT_SID": "AC1",
        "SMS_AUTH_TOKEN": "secret",
        "SMS_FROM": "+15550000000",
        "ONCALL_SMS_TO": "+15551234567",
    }
    monitor = MonitorProcess(tmp_path / "prometheus.yml", env)
    try:
        slack = lambda: [r for r in http.requests if r.path == "/slack"]  # noqa: E731
        sms = lambda: [r for r in http.requests if r.path.startswith("/sms/")]  # noqa: E731

        def dashboard() -> list[str]:
            with sqlite3.connect(_state_file(database)) as db:
                return [s for (s,) in db.execute("SELECT status FROM dashboard_notification")]

        def everywhere(n: int) -> bool:
            return (
                len(smtp.messages) >= 2 * n
                and len(slack()) >= n
                and len(sms()) >= n
                and len(dashboard()) >= n
            )

        monitor.wait_for(lambda: everywhere(1), timeout=60)
        exporter.body = "payment_failure_percent 0\n"
        monitor.wait_for(lambda: everywhere(2), timeout=60)
        # The sender counts a notification after the server took it: wait for the count.
        metrics = monitor.wait_for(
            lambda: (
                text
                if 'alertmanager_notifications_total{integration="email"} 4.0'
                in (text := monitor.client.get("/metrics").text)
                else None
            ),
            timeout=60,
        )
    finally:
        monitor.proc.terminate()
        monitor.proc.wait(30)

    # Email: the on-call address and the team's (devops@), each once firing, once resolved.
    by_rcpt: dict[str, list[str]] = {}
    for _, rcpts, data in smtp.messages:
        for rcpt in rcpts:
            by_rcpt.setdefault(rcpt, []).append(_status_of_mail(data))
    assert by_rcpt == {
        "oncall@pasargadprints.com": ["firing", "resolved"],
        "devops@pasargadprints.com": ["firing", "resolved"],
    }
    titles = [json.loads(r.body)["attachments"][0]["color"] for r in slack()]
    assert len(titles) == 2 and titles[1] == "#2eb886"  # the second is the resolution (green)
    bodies = [parse_qs(r.body.decode())["Body"][0] for r in sms()]
    assert len(bodies) == 2 and "RESOLVED" in bodies[1] and "RESOLVED" not in bodies[0]
    assert [parse_qs(r.body.decode())["To"] for r in sms()] == [["+15551234567"]] * 2
    assert sorted(dashboard()) == ["firing", "resolved"]
    assert 'alertmanager_notifications_total{integration="email"} 4.0' in metrics
    assert 'alertmanager_notifications_failed_total{integration="slack"} 0.0' in metrics
    assert "alertmanager_notification_latency_seconds_bucket" in metrics
