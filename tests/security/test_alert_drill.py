"""Issue 13's alert drills on real parts: the app as `make up` runs it (scripts/up.py: gunicorn
with 4 workers, `manage.py monitor run` scraping it and routing through the shipped
alertmanager.yml, beat_inprocess running the periodic file check) and a real SMTP server as
the security team's mailbox (security@, the `team="security"` route).

- an admin login at 03:00 shop time (a business-hours file whose zone puts now at 03:xx)
  → AdminLoginAfterHours mailed to security@ with who and from where;
- a privilege grant (is_staff for mallory, from a management shell) → PrivilegeGranted;
- a changed settings file (a copy under tmp named by SECURITY_INTEGRITY_PATHS; the shipped
  patterns name the checkout's own files) → FileIntegrityChanged, critical, naming the file.

Shortened, in copies of the shipped files: evaluation and scrape every second (as the payment
drill does), the routing tree's group_wait 30s → 0s and group_interval 5m → 1s, the file check
every 2 s instead of 5 minutes. Rules and routes are otherwise as shipped.
"""

from __future__ import annotations

import email
import subprocess
import sys

import httpx
import pytest

from tests.monitoring.notify.channels.servers import SmtpServer
from tests.scripts.test_up import ROOT, Up, up  # noqa: F401 (the fixture)
from tests.security.conftest import PASSWORD, hours_yaml
from tests.wait import wait_for

pytestmark = pytest.mark.slow

SECURITY = "security@pasargadprints.com"


def _shorten(runner: Up, smtp: SmtpServer, settings_copy) -> None:
    config = runner.config_dir / "prometheus.yml"
    text = config.read_text()
    for old, new in [
        ("  evaluation_interval: 15s\n", "  evaluation_interval: 1s\n"),
        ("    scrape_interval: 30s\n", "    scrape_interval: 1s\n"),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config.write_text(text)
    shipped = (ROOT / "deploy/alertmanager/alertmanager.yml").read_text()
    for old in ("  group_wait: 30s\n", "  group_interval: 5m\n"):
        assert shipped.count(old) == 1, old
    notify = runner.tmp / "alertmanager.yml"
    notify.write_text(
        shipped.replace("  group_wait: 30s\n", "  group_wait: 0s\n").replace(
            "  group_interval: 5m\n", "  group_interval: 1s\n"
        )
    )
    hours = runner.tmp / "business_hours.yml"
    hours.write_text(hours_yaml(now_inside=False))
    runner.env.update(
        {
            "WEB_CONCURRENCY": "4",
            "NOTIFY_CONFIG": str(notify),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "SECURITY_BUSINESS_HOURS": str(hours),
            "SECURITY_INTEGRITY_PATHS": str(settings_copy.parent / "*.py"),
            "SECURITY_INTEGRITY_SECONDS": "2",
        }
    )


def _security_mails(smtp: SmtpServer, alert: str) -> list[email.message.Message]:
    found = []
    for _, rcpts, data in list(smtp.messages):
        message = email.message_from_bytes(data)
        if SECURITY in rcpts and alert in message["Subject"]:
            found.append(message)
    return found


def _text(message: email.message.Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        p.get_payload(decode=True).decode(errors="replace")
        for p in parts
        if p.get_content_type() == "text/plain"
    )


def _shell(runner: Up, code: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=runner.env, check=True, timeout=120, capture_output=True,
    )  # fmt: skip


def test_after_hours_login_privilege_grant_and_changed_settings_reach_security(
    up,  # noqa: F811 (the fixture imported above)
    tmp_path,
):
    smtp = SmtpServer()
    settings_copy = tmp_path / "settings" / "production.py"
    settings_copy.parent.mkdir()
    settings_copy.write_text((ROOT / "config/settings/production.py").read_text())
    try:
        runner = up(lambda r: _shorten(r, smtp, settings_copy))
        # The first periodic check takes the baseline (beat_inprocess runs each task at start).
        baseline = runner.tmp / "var/security/file_baseline.json"
        wait_for(baseline.exists, 120, "the first file check's baseline")
        _shell(
            runner,
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user('root', password={PASSWORD!r}, is_staff=True); "
            f"User.objects.create_user('mallory', password={PASSWORD!r})",
        )
        login = httpx.post(
            f"{runner.base_url}/api/accounts/login/",
            json={"username": "root", "password": PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        _shell(
            runner,
            "from django.contrib.auth.models import User; "
            "u = User.objects.get(username='mallory'); u.is_staff = True; u.save()",
        )
        with settings_copy.open("a") as f:
            f.write("\nDEBUG = True  # an intruder's edit\n")

        [after_hours] = wait_for(
            lambda: _security_mails(smtp, "AdminLoginAfterHours"), 120, "AdminLoginAfterHours"
        )[:1]
        body = _text(after_hours)
        assert "root" in body and "127.0.0.1" in body, body
        wait_for(
            lambda: any("mallory" in _text(m) for m in _security_mails(smtp, "PrivilegeGranted")),
            120,
            "PrivilegeGranted for mallory",
        )
        [changed] = wait_for(
            lambda: _security_mails(smtp, "FileIntegrityChanged"), 120, "FileIntegrityChanged"
        )[:1]
        text = _text(changed)
        assert str(settings_copy) in text and "critical" in text.lower(), text
    finally:
        smtp.close()
