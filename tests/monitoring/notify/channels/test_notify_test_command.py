"""`manage.py monitor notify-test RECEIVER`: a real test message through every integration of a
receiver of the notifier configuration; `--channel KIND`: through one channel from the
environment. Real local receivers: aiosmtpd and HTTP servers."""

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
    code, out, err = _notify_test("--channel", "email", "--to", "me@example.com")
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
    code, _, err = _notify_test("--channel", "sms")
    assert (code, err) == (0, "")
    (request,) = receiver.requests
    assert request.path == "/2010-04-01/Accounts/AC9/Messages.json"
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+15552223333"]
    assert form["Body"] == [
        "INFO NotificationTest notify-test: Test notification from the Pasargad monitor"
    ]


def test_webhook_and_dashboard(receiver, tmp_path, monkeypatch):
    code, _, _ = _notify_test("--channel", "webhook", "--to", f"{receiver.url}/hook")
    assert code == 0
    assert json.loads(receiver.requests[0].body)["receiver"] == "notify-test-webhook"
    monkeypatch.setenv("MONITOR_STATE_PATH", str(tmp_path / "state.sqlite3"))
    assert _notify_test("--channel", "dashboard")[0] == 0
    store = StateStore(tmp_path / "state.sqlite3")
    (row,) = store.dashboard_notifications()
    store.close()
    assert row.receiver == "notify-test-dashboard"


def test_a_missing_setting_or_a_failed_delivery_is_an_error(monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    code, _, err = _notify_test("--channel", "slack")
    assert code == 2 and "SLACK_WEBHOOK_URL" in err
    code, _, err = _notify_test("--channel", "pager")
    assert code == 2 and "unknown channel 'pager'" in err
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}/services/x")
    code, _, err = _notify_test("--channel", "slack")
    assert code == 1 and "retryable: slack: ConnectError" in err


def test_the_real_manage_py(receiver):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_WEBHOOK_URL": receiver.url}
    result = subprocess.run(
        [sys.executable, "manage.py", "monitor", "notify-test", "--channel", "webhook"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "delivered" in result.stdout
    assert len(receiver.requests) == 1


RECEIVERS = """\
global: {smtp_smarthost: "127.0.0.1:{smtp_port}", smtp_from: alerts@example.com, smtp_require_tls: false}
route: {receiver: team}
receivers:
  - name: team
    email_configs: [{to: team@example.com}]
    slack_configs: [{api_url: "{url}/slack", channel: "#alerts"}]
    webhook_configs:
      - url: "{url}/hook"
      - url: "http://app.invalid/api/monitoring/alertmanager/sms"
      - url: "http://app.invalid/api/monitoring/alertmanager/dashboard"
  - name: half-broken
    webhook_configs:
      - url: "{url}/hook"
      - url: "http://127.0.0.1:{closed}/hook"
  - name: nobody
"""


def _receivers_file(tmp_path, receiver, smtp) -> Path:
    text = (
        RECEIVERS.replace("{smtp_port}", str(smtp.port))
        .replace("{url}", receiver.url)
        .replace("{closed}", str(closed_port()))
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return path


def test_a_receiver_by_name_gets_the_test_through_every_integration(
    receiver, smtp, tmp_path, monkeypatch
):
    config = _receivers_file(tmp_path, receiver, smtp)
    for name, value in {
        "SMS_API_URL": receiver.url,
        "SMS_ACCOUNT_SID": "AC9",
        "SMS_AUTH_TOKEN": "tok",
        "SMS_FROM": "+15550001111",
        "ONCALL_SMS_TO": "+15552223333",
        "MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3"),
    }.items():
        monkeypatch.setenv(name, value)
    code, out, err = _notify_test("team", "--config", str(config))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "notify-test team email/0 (email)",
        "notify-test team slack/0 (slack)",
        "notify-test team webhook/0 (webhook)",
        "notify-test team webhook/1 (sms)",
        "notify-test team webhook/2 (dashboard)",
    ]
    assert all(": delivered (idempotency key " in line for line in lines)
    # Each real receiver got one clearly-marked test.
    ((_, rcpt_tos, data),) = smtp.messages
    assert rcpt_tos == ["team@example.com"]
    assert b"NotificationTest" in data and b"Test notification" in data
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/2010-04-01/Accounts/AC9/Messages.json", "/hook", "/slack"]
    [hook] = [r for r in receiver.requests if r.path == "/hook"]
    body = json.loads(hook.body)
    assert body["receiver"] == "team"
    assert body["alerts"][0]["labels"]["alertname"] == "NotificationTest"
    store = StateStore(tmp_path / "state.sqlite3")
    (row,) = store.dashboard_notifications()
    store.close()
    assert row.receiver == "team"


def test_a_failing_integration_is_named_with_its_reason_and_the_exit_code_is_1(
    receiver, smtp, tmp_path
):
    config = _receivers_file(tmp_path, receiver, smtp)
    code, out, err = _notify_test("half-broken", "--config", str(config))
    assert code == 1
    assert out.startswith("notify-test half-broken webhook/0 (webhook): delivered")
    assert err.startswith("notify-test half-broken webhook/1 (webhook): failed (retryable): ")
    assert "ConnectError" in err
    assert len(receiver.requests) == 1  # the working one was still sent
    receiver.status = 500
    code, out, err = _notify_test("half-broken", "--config", str(config))
    assert code == 1 and "webhook/0 (webhook): failed (retryable)" in err and "500" in err


def test_an_unknown_receiver_lists_the_receivers(receiver, smtp, tmp_path):
    config = _receivers_file(tmp_path, receiver, smtp)
    code, out, err = _notify_test("pager", "--config", str(config))
    assert code == 2 and out == ""
    assert f"no receiver 'pager' in {config}; its receivers: team, half-broken, nobody" in err
    code, _, err = _notify_test("nobody", "--config", str(config))
    assert code == 1 and "no integrations" in err
    code, _, err = _notify_test()
    assert code == 2 and "name a RECEIVER, or --channel KIND" in err
    (tmp_path / "bad.yml").write_text("route: {receiver: x}\nreceivers: []\n")
    code, _, err = _notify_test("x", "--config", str(tmp_path / "bad.yml"))
    assert code == 2 and "bad.yml" in err
    assert receiver.requests == [] and smtp.messages == []


def test_the_shipped_files_receivers_can_be_named(monkeypatch):
    # The shipped file, by default: an unknown name lists its receivers.
    code, _, err = _notify_test("no-such-receiver")
    assert code == 2 and "oncall" in err and "slack-critical" in err
