"""Issue 12's escalation acceptance, on real processes.

A real `manage.py monitor run` (embedded mode) with the shipped alertmanager.yml, an
escalation file with second-long timers, its channels pointing at real local receivers
(aiosmtpd, a Slack webhook server, an SMS API server), and a real Celery worker on Redis db 10:

- `DrillCelery` (critical, never acknowledged) climbs: level 1 restarts the worker's pool
  through Celery remote control (its pool process is replaced: a new pid) and Slack is told
  what was done; level 2 reaches the on-call engineer by SMS and email; level 3 the senior
  engineer's mail; level 4 management's mail and the customer notice (/api/status/, the
  public /status/ page). Resolving ends the escalation and takes the notice down.
- `AckMe` (critical) reaches level 2; the one-click link of its SMS, POSTed, acknowledges it
  (recorded with who and when); past its level-3 time it has climbed no further though it
  keeps firing.

Every level's notification is an outbox row under an `escalation/` group key; each must
arrive, once, where its integration sends.
"""

# ruff: noqa: F811 (the fixture imported from test_run is a parameter below)
from __future__ import annotations

import email
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from celery import Celery

from monitoring.escalation.status import status_notice, status_notice_clear_cache
from tests.monitoring.monitor.exporter import Exporter
from tests.monitoring.monitor.test_run import MonitorProcess, database  # noqa: F401
from tests.monitoring.notify.drill_receivers import ONCALL_SMS, Receivers, shipped_notify_config
from tests.services import require_redis
from tests.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

REPO = Path(__file__).resolve().parents[3]
BROKER = "redis://127.0.0.1:6379/10"
WORKER = "escalation-acceptance@%h"
RULES = """\
groups:
  - name: escalation
    rules:
      - alert: DrillCelery
        expr: drill_celery > 0
        labels: {severity: critical, team: devops}
        annotations: {summary: Celery is stuck}
      - alert: AckMe
        expr: ack_me > 0
        labels: {severity: critical, team: devops}
        annotations: {summary: Someone will take this}
"""
POLICIES = """\
policies:
  - name: celery
    match: ['alertname="DrillCelery"']
    levels:
      - level: 1
        after: 0s
        actions: [{action: pool_restart}]
        receivers: [slack-critical]
      - {level: 2, after: 2s, receivers: [oncall]}
      - {level: 3, after: 4s, receivers: [senior-engineer]}
      - level: 4
        after: 6s
        receivers: [management]
        notice: {title: Orders are delayed, message: We are restarting order processing.}
  - name: ackme
    match: ['alertname="AckMe"']
    levels:
      - {level: 2, after: 0s, receivers: [oncall]}
      - {level: 3, after: 20s, receivers: [senior-engineer]}
"""


class Worker:
    """A real Celery worker (prefork, one pool process) on Redis db 10."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.log = open(tmp / "worker.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
             "--concurrency=1", "-n", WORKER, "-Q", "escalation-acceptance",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.app = Celery("escalation-test", broker=BROKER, set_as_current=False)

    def pool_pids(self) -> list[int] | None:
        assert self.proc.poll() is None, (Path(self.log.name)).read_text()
        stats = self.app.control.inspect(timeout=1.0).stats() or {}
        for name, info in stats.items():
            if name.startswith("escalation-acceptance@"):
                return list(info["pool"]["processes"])
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self.app.close()


def _escalation_rows(state: Path) -> list[dict]:
    """The outbox rows of escalation levels: key, receiver, integration, alert, level."""
    with sqlite3.connect(state) as db:
        rows = db.execute(
            "SELECT idempotency_key, receiver, integration, payload FROM notification_outbox"
        ).fetchall()
    out = []
    for key, receiver, integration, payload in rows:
        data = json.loads(payload)
        if data["group_key"].startswith("escalation/"):
            (alert,) = data["alerts"]
            out.append(
                {
                    "key": key,
                    "receiver": receiver,
                    "integration": integration,
                    "alert": alert["labels"]["alertname"],
                    "level": int(alert["annotations"]["escalation_level"]),
                }
            )
    return out


def _events(state: Path, alertname: str) -> list[tuple[str, int | None]]:
    with sqlite3.connect(state) as db:
        try:
            return db.execute(
                "SELECT e.kind, e.level FROM alert_event e JOIN alert a USING (fingerprint)"
                " WHERE a.alertname = ? ORDER BY e.id",
                (alertname,),
            ).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []


def _times(state: Path, alertname: str) -> tuple[int, int]:
    """When the alert's episode started firing and when it was acknowledged (ms)."""
    with sqlite3.connect(state) as db:
        return db.execute(
            "SELECT episode_ms, at_ms FROM alert_ack WHERE alertname = ?", (alertname,)
        ).fetchone()


DESTINATION = {
    ("slack-critical", "slack/0"): "#alerts-critical",
    ("oncall", "email/0"): "oncall@pasargadprints.com",
    ("oncall", "webhook/0"): f"sms:{ONCALL_SMS}",
    ("senior-engineer", "email/0"): "senior@pasargadprints.com",
    ("management", "email/0"): "management@pasargadprints.com",
}


@pytest.fixture
def stack(tmp_path, database, monkeypatch):
    require_redis()
    env_base = {**database, "REDIS_URL": BROKER}
    receivers = Receivers(tmp_path / "state.sqlite3")
    (tmp_path / "escalation.yml").write_text(POLICIES)
    (tmp_path / "rules.yml").write_text(RULES)
    worker = Worker(tmp_path, env_base)
    with Exporter() as exporter:
        exporter.body = "drill_celery 0\nack_me 0\n"
        (tmp_path / "prometheus.yml").write_text(
            # A scrape's timeout is its interval: one failed scrape makes the series stale and
            # resolves both alerts, so not below 1 s on a loaded machine (a 300 ms one did,
            # and AckMe's link answered 409, "not firing any more").
            "global: {scrape_interval: 1s, evaluation_interval: 300ms}\n"
            "rule_files: ['rules.yml']\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        )
        env = {
            **env_base,
            "MONITOR_DATA_DIR": str(tmp_path / "data"),
            "MONITOR_STATE_PATH": str(receivers.state),
            **receivers.env(shipped_notify_config(tmp_path / "alertmanager.yml")),
            "ESCALATION_CONFIG": str(tmp_path / "escalation.yml"),
            "ESCALATION_INTERVAL": "0.2",
            "ACK_BASE_URL": "http://shop.test",
        }
        # This process serves the link's POST and reads the notice from the same state file.
        monkeypatch.setenv("MONITOR_STATE_PATH", str(receivers.state))
        monitor = None
        try:
            before = wait_for(worker.pool_pids, timeout=90, what="the Celery worker answers")
            monitor = MonitorProcess(tmp_path / "prometheus.yml", env)
            yield receivers, exporter, worker, monitor, before
        finally:
            if monitor is not None:
                monitor.stop()
            worker.stop()
            receivers.close()


def _arrived(receivers: Receivers, rows: list[dict]) -> bool:
    got = receivers.arrivals()
    return bool(rows) and all(
        (DESTINATION[(r["receiver"], r["integration"])], r["key"]) in got for r in rows
    )


def test_an_unacknowledged_alert_climbs_an_acknowledged_one_stops_a_resolved_one_ends(
    stack, client
):
    receivers, exporter, worker, monitor, pids_before = stack
    state = receivers.state
    exporter.body = "drill_celery 1\nack_me 1\n"

    # AckMe reached level 2: acknowledge it with the one-click link of its SMS.
    def ackme_sms() -> str | None:
        for request in receivers.sms.requests:
            body = parse_qs(request.body.decode())["Body"][0]
            if body.startswith("L2 CRITICAL AckMe"):
                return body
        return None

    sms = wait_for(ackme_sms, timeout=30, what="AckMe's level-2 SMS")
    link = sms.split("Ack: ", 1)[1].split()[0]
    assert link.startswith("http://shop.test/ack/") and len(sms) <= 160
    path = link.removeprefix("http://shop.test")
    assert client.get(path).status_code == 200  # a previewer's GET: nothing happens
    assert ("ack", None) not in _events(state, "AckMe")
    done = client.post(path, {"by": "erin", "comment": "restarting by hand"})
    assert done.status_code == 200, done.content
    assert ("ack", None) in _events(state, "AckMe")
    assert b"acknowledged by erin (link)" in done.content

    # Level 1: the worker's pool really restarted (a new pool process), Slack told what was done.
    wait_for(lambda: (worker.pool_pids() or pids_before) != pids_before, timeout=60,
             what="the worker's pool process replaced")  # fmt: skip
    wait_for(lambda: ("action", 1) in _events(state, "DrillCelery"), timeout=30)

    def slack_level_1() -> str | None:
        for request in receivers.slack.requests:
            text = json.dumps(json.loads(request.body))
            if "Automated response" in text and "DrillCelery" in text:
                return text
        return None

    slack = wait_for(slack_level_1, timeout=30, what="level 1 on Slack")
    assert "restarted the worker pool of 1 worker(s)" in slack
    assert "http://shop.test/ack/" in slack  # the Acknowledge button

    # DrillCelery climbs to level 4; the customer notice is up.
    wait_for(lambda: ("level", 4) in _events(state, "DrillCelery"), timeout=60)
    status_notice_clear_cache()
    notice = status_notice(str(state))
    assert notice is not None and notice["title"] == "Orders are delayed"
    assert client.get("/api/status/").json()["notice"]["title"] == "Orders are delayed"
    assert b"We are restarting order processing." in client.get("/status/").content

    # Every level's notification arrived where it is sent, once.
    expected = {
        ("DrillCelery", 1, "slack-critical", "slack/0"),
        ("DrillCelery", 2, "oncall", "email/0"),
        ("DrillCelery", 2, "oncall", "webhook/0"),
        ("DrillCelery", 3, "senior-engineer", "email/0"),
        ("DrillCelery", 4, "management", "email/0"),
        ("AckMe", 2, "oncall", "email/0"),
        ("AckMe", 2, "oncall", "webhook/0"),
    }
    wait_for(lambda: _arrived(receivers, _escalation_rows(state)), timeout=60, what="levels arrive")
    rows = _escalation_rows(state)
    assert {(r["alert"], r["level"], r["receiver"], r["integration"]) for r in rows} == expected
    got = receivers.arrivals()
    assert all(got[(DESTINATION[(r["receiver"], r["integration"])], r["key"])] == 1 for r in rows)
    mails = [email.message_from_bytes(data) for _, _, data in receivers.smtp_messages]
    senior = [m for m in mails if "senior@pasargadprints.com" in m["To"]]
    assert (
        senior
        and "Escalation level 3 (senior engineer)"
        in senior[0].get_payload()[0].get_payload(decode=True).decode()
    )

    # Acknowledged: AckMe passes its level-3 time (20 s) still firing, without climbing.
    started, acked = _times(state, "AckMe")
    assert acked < started + 20_000, "acknowledged too late to tell (a loaded machine?)"
    wait_for(lambda: time.time() * 1000 > started + 22_000, timeout=60)
    assert ("level", 3) not in _events(state, "AckMe")
    assert any(a["labels"]["alertname"] == "AckMe" for a in monitor.alerts())

    # Resolved: the escalation ends, the notice comes down.
    exporter.body = "drill_celery 0\nack_me 0\n"
    wait_for(lambda: ("end", None) in _events(state, "DrillCelery"), timeout=60)
    wait_for(lambda: ("end", None) in _events(state, "AckMe"), timeout=60)
    status_notice_clear_cache()
    assert status_notice(str(state)) is None
    assert client.get("/api/status/").json() == {"status": "operational", "notice": None}
