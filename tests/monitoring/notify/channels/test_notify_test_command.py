"""`manage.py monitor notify-test CHANNEL`: one real test message through one channel."""

import io
import json
import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import parse_qs

from django.core.management import call_command

from monitoring.monitor.state import StateStore
from tests.faults import closed_port

REPO = Path(__file__).resolve().parents[4]


def _notify_test(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("monitor", "notify-test", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_email_to_a_real_smtp_server(smtp, monkeypatch):
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(smtp.port))
    monkeypatch.setenv("RUNBOOK_BASE_URL", "https://git.example/pasargad/blob/main/")
    code, out, err = _notify_test("email", "--to", "me@example.com")
    assert (code, err) == (0, "")
    assert out.startswith("notify-test email: delivered (idempotency key ")
    ((_, rcpt_tos, data),) = smtp.messages
    assert rcpt_tos == ["me@example.com"]
    message = message_from_bytes(data, policy=policy.default)
    assert message["Subject"] == "[FIRING:1] NotificationTest (info notify-test)"
    assert "https://git.example/pasargad/blob/main/docs/notify-channels.md" in (
        message.get_body(("plain",)).get_content()
    )


def test_sms_uses_the_environments_api_and_on_call_number(receiver, monkeypatch):
    for name, value in {
        "SMS_API_URL": receiver.url,
        "SMS_ACCOUNT_SID": "AC9",
        "SMS_AUTH_TOKEN": "tok",
        "SMS_FROM": "+15550001111",
        "ONCALL_SMS_TO": "+15552223333",
    }.items():
        monkeypatch.setenv(name, value)
    code, _, err = _notify_test("sms")
    assert (code, err) == (0, "")
    (request,) = receiver.requests
    assert request.path == "/2010-04-01/Accounts/AC9/Messages.json"
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+15552223333"]
    assert form["Body"] == [
        "INFO NotificationTest notify-test: Test notification from the Pasargad monitor"
    ]


def test_webhook_and_dashboard(receiver, tmp_path, monkeypatch):
    code, _, _ = _notify_test("webhook", "--to", f"{receiver.url}/hook")
    assert code == 0
    assert json.loads(receiver.requests[0].body)["receiver"] == "notify-test-webhook"
    monkeypatch.setenv("MONITOR_STATE_PATH", str(tmp_path / "state.sqlite3"))
    assert _notify_test("dashboard")[0] == 0
    store = StateStore(tmp_path / "state.sqlite3")
    (row,) = store.dashboard_notifications()
    store.close()
    assert row.receiver == "notify-test-dashboard"


def test_a_missing_setting_or_a_failed_delivery_is_an_error(monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    code, _, err = _notify_test("slack")
    assert code == 2 and "SLACK_WEBHOOK_URL" in err
    code, _, err = _notify_test("pager")
    assert code == 2 and "unknown channel 'pager'" in err
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}/services/x")
    code, _, err = _notify_test("slack")
    assert code == 1 and "retryable: slack: ConnectError" in err


def test_the_real_manage_py(receiver):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_WEBHOOK_URL": receiver.url}
    result = subprocess.run(
        [sys.executable, "manage.py", "monitor", "notify-test", "webhook"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "delivered" in result.stdout
    assert len(receiver.requests) == 1
