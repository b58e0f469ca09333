"""Acceptance (issue 10, at scale): real Prometheus and real Alertmanager, on the shipped files,
deliver a real alert to the SMTP, Slack and SMS receivers and to the app's receiver.

- The app runs under gunicorn (SQLite, a temporary VAR_DIR, MONITORING_TOKEN); its SMS settings
  point at a local SMS-API receiver, for under Alertmanager the app sends the SMS.
- Prometheus (Debian's 2.42) runs the shipped prometheus.yml and rule files, changed only as
  docs/notify.md's "At scale" says: the app job's target and its `credentials_file`, the
  `prometheus` job's target (Prometheus itself) and the Alertmanager target. The rule files sit
  beside the file, as the shipped `rule_files` glob wants; intervals stay the shipped ones.
- Alertmanager (Debian's 0.25) runs the file `manage.py monitor render-alertmanager` writes from
  the shipped one, with EMAIL_HOST/EMAIL_PORT at a local SMTP server, SLACK_WEBHOOK_URL and
  WATCHDOG_WEBHOOK_URL at a local HTTP receiver and APP_URL at the app.
- The fault is real: the categories table disappears (a botched migration), every catalog
  request fails, and the shipped DatabaseErrors (critical, team development, no `for`) fires at
  the first evaluation after the next scrape.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import yaml

from monitoring.monitor.config import settings_from_env
from monitoring.monitor.state import StateStore
from monitoring.rules.gofmt import parse_rfc3339_ms
from tests.gunicorn import ROOT, TOKEN, Gunicorn, single_process
from tests.monitoring.notify.channels.servers import HttpReceiver, SmtpServer
from tests.monitoring.notify.real_alertmanager import alertmanager, free_port  # noqa: F401
from tests.services import require_alertmanager, require_prometheus
from tests.wait import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

PROM_DIR = ROOT / "deploy" / "prometheus"
AM_FILE = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
APP_JOB = "pasargad-prints"
SMS = {
    "SMS_API_URL": "",  # the receiver's URL, set in the test
    "SMS_ACCOUNT_SID": "AC7",
    "SMS_AUTH_TOKEN": "sms-secret",
    "SMS_FROM": "+15550000000",
    "ONCALL_SMS_TO": "+15557654321",
}


def prometheus_deploy(directory: Path, *, app: str, token_file: Path, itself: str, am: str) -> Path:
    """The shipped prometheus.yml with docs/notify.md's "At scale" changes, its rule files
    beside it. Everything else (intervals, rule_files, metrics_path) stays as shipped."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {APP_JOB, "prometheus"}
    jobs[APP_JOB]["static_configs"] = [{"targets": [app]}]
    jobs[APP_JOB]["authorization"] = {"credentials_file": str(token_file)}
    jobs["prometheus"]["static_configs"] = [{"targets": [itself]}]
    [alertmanagers] = config["alerting"]["alertmanagers"]
    alertmanagers["static_configs"] = [{"targets": [am]}]
    directory.mkdir()
    for rules in PROM_DIR.glob("*_rules.yml"):
        shutil.copy(rules, directory)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def render_alertmanager(out: Path, env: dict[str, str]) -> None:
    """`manage.py monitor render-alertmanager` from the shipped file, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "manage.py", "monitor", "render-alertmanager", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.stat().st_mode & 0o777 == 0o600


def check(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def receivers():
    smtp, http = SmtpServer(), HttpReceiver()
    yield smtp, http
    smtp.close()
    http.close()


def mails_about(smtp: SmtpServer, alertname: str) -> dict[str, list[str]]:
    """Recipient → subjects of the messages whose subject names the alert."""
    seen: dict[str, list[str]] = {}
    for _, rcpts, data in list(smtp.messages):
        subject = email.message_from_bytes(data, policy=email.policy.default)["Subject"]
        if alertname in subject:
            for rcpt in rcpts:
                seen.setdefault(rcpt, []).append(subject)
    return seen


def test_real_prometheus_and_alertmanager_deliver_everywhere(
    tmp_path,
    receivers,
    alertmanager,  # noqa: F811 (the fixture)
):
    require_prometheus()
    require_alertmanager()
    smtp, http = receivers
    sms_env = {**SMS, "SMS_API_URL": f"{http.url}/sms"}
    with Gunicorn(tmp_path, workers=2, **sms_env) as app:
        # Alertmanager on the rendered file.
        rendered = tmp_path / "alertmanager.yml"
        render_alertmanager(
            rendered,
            {
                **single_process(app.env),
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(smtp.port),
                "SLACK_WEBHOOK_URL": f"{http.url}/slack",
                "WATCHDOG_WEBHOOK_URL": f"{http.url}/watchdog",
                "APP_URL": app.base_url,
                "SITE_URL": "https://shop.example",  # the acknowledgement links' base
            },
        )
        check("amtool", "check-config", str(rendered))
        am_url = alertmanager(rendered)

        # Prometheus on the shipped file.
        token_file = tmp_path / "pasargad_token"
        token_file.write_text(TOKEN + "\n")
        port = free_port()
        config = prometheus_deploy(
            tmp_path / "prometheus",
            app=app.base_url.removeprefix("http://"),
            token_file=token_file,
            itself=f"127.0.0.1:{port}",
            am=am_url.removeprefix("http://"),
        )
        check("promtool", "check", "config", str(config))
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        prom = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        try:
            _scenario(app, prom, smtp, http, tmp_path)
        finally:
            prom.close()
            os.killpg(prometheus.pid, signal.SIGTERM)
            prometheus.wait(timeout=30)
            log.close()


def _scenario(app: Gunicorn, prom: httpx.Client, smtp, http, tmp_path: Path) -> None:
    def scraped() -> bool:
        try:
            result = prom.get("/api/v1/query", params={"query": f'up{{job="{APP_JOB}"}}'})
            return [r["value"][1] for r in result.json()["data"]["result"]] == ["1"]
        except (httpx.HTTPError, KeyError, ValueError):
            return False

    wait_for(scraped, timeout=90, what="Prometheus scraped the app with its token")
    # The fault, after that first scrape, so the next one sees database_errors_total rise.
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        db.execute("ALTER TABLE catalog_category RENAME TO catalog_category_gone")
    with httpx.Client(base_url=app.base_url, timeout=30) as client:
        statuses = {client.get("/api/catalog/categories/").status_code for _ in range(20)}
    assert statuses == {500}

    slack = lambda: [r for r in http.requests if r.path == "/slack"]  # noqa: E731
    sms = lambda: [r for r in http.requests if r.path.startswith("/sms/")]  # noqa: E731
    state_path = settings_from_env(app.env).state_path

    def dashboard() -> list:
        if not state_path.exists():
            return []
        store = StateStore(state_path)
        try:
            return store.dashboard_notifications()
        finally:
            store.close()

    def everywhere() -> bool:
        told = mails_about(smtp, "DatabaseErrors")
        return (
            {"dev@pasargadprints.com", "oncall@pasargadprints.com"} <= set(told)
            and any(b"DatabaseErrors" in r.body for r in slack())
            and any(b"DatabaseErrors" in r.body for r in sms())
            and any(n.title and "DatabaseErrors" in n.title for n in dashboard())
        )

    # Scrape every 30 s, evaluate every 15 s, group_wait 0s on the critical routes.
    wait_for(everywhere, timeout=120, interval=0.5, what="DatabaseErrors told everywhere")

    # Email: the development team (the rule's `team`) and on-call; nobody else for this alert.
    told = mails_about(smtp, "DatabaseErrors")
    assert set(told) == {"dev@pasargadprints.com", "oncall@pasargadprints.com"}, told
    assert all("[FIRING:1] DatabaseErrors" in s for subjects in told.values() for s in subjects)
    # Slack: the critical channel, through the rendered SLACK_WEBHOOK_URL.
    [message] = [json.loads(r.body) for r in slack() if b"DatabaseErrors" in r.body]
    assert message["channel"] == "#alerts-critical"
    # The shipped title and text templates, rendered by Alertmanager itself.
    [attachment] = message["attachments"]
    assert attachment["color"] == "danger"
    assert attachment["title"] == "[FIRING:1] DatabaseErrors (critical, team development)"
    instance = app.base_url.removeprefix("http://")
    lines = attachment["text"].splitlines()
    assert lines[0] == f"*DatabaseErrors* on {instance}: Database errors detected"
    assert lines[1].startswith("More than 5 database errors (OperationalError)")
    assert lines[2].startswith("Since ") and lines[2].endswith(
        " UTC | runbook: docs/runbooks/DatabaseErrors.md"
    )
    # SMS: Alertmanager → the app's /sms receiver (bearer token) → the SMS API.
    [text] = [parse_qs(r.body.decode()) for r in sms() if b"DatabaseErrors" in r.body]
    assert text["To"] == ["+15557654321"] and text["From"] == ["+15550000000"]
    assert text["Body"] == [f"CRITICAL DatabaseErrors {instance}: Database errors detected"]
    assert [r.path for r in sms()][0] == "/sms/2010-04-01/Accounts/AC7/Messages.json"
    # Dashboard: Alertmanager → the app's /dashboard receiver → the records the embedded
    # monitor's dashboard channel writes (the state store at MONITOR_STATE_PATH's default).
    assert state_path == tmp_path / "monitor" / "state.sqlite3"
    [record] = [n for n in dashboard() if "DatabaseErrors" in n.title]
    assert (record.receiver, record.status, record.severity) == ("dashboard", "firing", "critical")
    [alert] = record.body["alerts"]
    assert alert["labels"]["team"] == "development"
    assert alert["labels"]["job"] == APP_JOB
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/DatabaseErrors.md"
    # The Slack text ends with the alert's acknowledgement form on the dashboard (by the same
    # fingerprint: Alertmanager cannot sign the one-click link the embedded notifier sends).
    assert lines[3:] == [
        f"Acknowledge <https://shop.example/dashboard/alerts/#ack={alert['fingerprint']}"
        f"|DatabaseErrors on {instance}>"
    ]
    # The email too: the shipped HTML (Alertmanager's html/template) with the same link.
    [mail] = [
        email.message_from_bytes(data, policy=email.policy.default)
        for _, rcpts, data in list(smtp.messages)
        if "oncall@pasargadprints.com" in rcpts and b"DatabaseErrors" in data
    ]
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert f"<strong>DatabaseErrors</strong> on {instance}: firing" in html
    assert (
        f'<a href="https://shop.example/dashboard/alerts/#ack={alert["fingerprint"]}">'
        f"DatabaseErrors on {instance}</a>"
    ) in html
    # History: the /dashboard and /sms receivers both got it, one firing transition recorded,
    # under Alertmanager's fingerprint (ours) and start.
    store = StateStore(state_path)
    try:
        history = store.alert_transitions_after(after_id=0)
    finally:
        store.close()
    [fired] = [t for t in history if t.alertname == "DatabaseErrors"]
    assert (fired.from_state, fired.to_state) == ("inactive", "firing")
    assert fired.fingerprint == alert["fingerprint"]
    assert fired.at_ms == parse_rfc3339_ms(alert["startsAt"])
    # The dead man's switch: Watchdog pinged through WATCHDOG_WEBHOOK_URL, and told nowhere else.
    # (Prometheus resends a firing alert once a minute: a first send before it had found
    # Alertmanager is made up for then.)
    wait_for(
        lambda: any(b"Watchdog" in r.body for r in http.requests if r.path == "/watchdog"),
        timeout=120, interval=0.5, what="Watchdog at the dead man's switch",
    )  # fmt: skip
    assert not mails_about(smtp, "Watchdog")

    # What Prometheus ran: both shipped jobs up (the app with its token, Prometheus itself),
    # every shipped rule file loaded and no rule failing.
    targets = prom.get("/api/v1/targets").json()["data"]["activeTargets"]
    assert {(t["labels"]["job"], t["health"]) for t in targets} == {
        (APP_JOB, "up"),
        ("prometheus", "up"),
    }
    groups = prom.get("/api/v1/rules").json()["data"]["groups"]
    assert {Path(g["file"]).name for g in groups} == {p.name for p in PROM_DIR.glob("*_rules.yml")}
    failing = [r["name"] for g in groups for r in g["rules"] if r["health"] == "err"]
    assert failing == []
