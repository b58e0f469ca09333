"""The receivers of the notification drills and their bookkeeping, counted by idempotency key.

`Receivers` runs real local servers for the shipped alertmanager.yml's channels (aiosmtpd for
email, a recording HTTP server for the Slack webhook and one for the SMS API; the dashboard
channel writes the monitor's state file), gives the monitor's environment pointing at them, and
compares what the monitor queued (its outbox: one row per notification and receiver
integration) with what arrived: the email's Message-ID at its address, the Slack and SMS
requests' Idempotency-Key header (answered 2xx), the dashboard row's key.
"""

from __future__ import annotations

import email
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tests.monitoring.notify.channels.servers import HttpReceiver, SmtpServer

REPO = Path(__file__).resolve().parents[3]
ONCALL_SMS = "+15551234567"

# Where each receiver integration of the shipped file arrives (the oncall webhook is SMS).
DESTINATION = {
    ("email-devops", "email/0"): "devops@pasargadprints.com",
    ("email-development", "email/0"): "dev@pasargadprints.com",
    ("oncall", "email/0"): "oncall@pasargadprints.com",
    ("oncall", "webhook/0"): f"sms:{ONCALL_SMS}",
    ("slack-critical", "slack/0"): "#alerts-critical",
    ("slack-warnings", "slack/0"): "#alerts-warnings",
    ("dashboard", "webhook/0"): "dashboard",
}
# The receiver integrations the shipped routes pick, by severity and team.
CRITICAL_DEVOPS = frozenset(
    {
        ("dashboard", "webhook/0"),
        ("slack-critical", "slack/0"),
        ("oncall", "email/0"),
        ("oncall", "webhook/0"),
        ("email-devops", "email/0"),
    }
)
CRITICAL_DEVELOPMENT = CRITICAL_DEVOPS - {("email-devops", "email/0")} | {
    ("email-development", "email/0")
}
WARNING_DEVELOPMENT = frozenset(
    {("dashboard", "webhook/0"), ("slack-warnings", "slack/0"), ("email-development", "email/0")}
)

_DASHBOARD_KEYS = "SELECT idempotency_key FROM dashboard_notification"


def shipped_notify_config(path: Path) -> Path:
    """The shipped alertmanager.yml with group_interval 1s (a resolution then need not wait
    5 minutes); nothing else changed."""
    shipped = (REPO / "deploy/alertmanager/alertmanager.yml").read_text()
    assert "  group_interval: 5m\n" in shipped
    path.write_text(shipped.replace("  group_interval: 5m\n", "  group_interval: 1s\n"))
    return path


class Receivers:
    def __init__(self, state: Path) -> None:
        self.state = state  # the monitor's state file (the outbox, the dashboard's rows)
        self.smtp_messages: list[tuple[str, list[str], bytes]] = []
        self.smtp = self._smtp()
        self.slack, self.sms = HttpReceiver(), HttpReceiver()
        self.kills = 0  # the monitor SIGKILLed: each may repeat one notification per channel

    def env(self, notify_config: Path) -> dict[str, str]:
        return {
            "NOTIFY_CONFIG": str(notify_config),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.port),
            "SLACK_WEBHOOK_URL": f"{self.slack.url}/slack",
            "SMS_API_URL": f"{self.sms.url}/sms",
            "SMS_ACCOUNT_SID": "AC1",
            "SMS_AUTH_TOKEN": "secret",
            "SMS_FROM": "+15550000000",
            "ONCALL_SMS_TO": ONCALL_SMS,
        }

    def _smtp(self, port: int | None = None) -> SmtpServer:
        server = SmtpServer(port=port)
        server.messages = self.smtp_messages  # one record across a stop and a start
        return server

    def smtp_stop(self) -> None:
        self.smtp.close()  # the port is closed: connections are refused

    def smtp_start(self) -> None:
        self.smtp = self._smtp(port=self.smtp.port)

    def close(self) -> None:
        self.smtp.close()
        self.slack.close()
        self.sms.close()

    # -- what was queued and what arrived -----------------------------------------------------
    def outbox(self) -> list[dict]:
        """The monitor's outbox rows: key, receiver, integration, status, and the
        (alertname, status) pairs the notification told."""
        if not self.state.exists():
            return []
        with sqlite3.connect(self.state) as db:
            rows = db.execute(
                "SELECT idempotency_key, receiver, integration, status, payload"
                " FROM notification_outbox ORDER BY id"
            ).fetchall()
        return [
            {
                "key": key,
                "receiver": receiver,
                "integration": integration,
                "status": status,
                "alerts": {
                    (a["labels"]["alertname"], a["status"]) for a in json.loads(payload)["alerts"]
                },
            }
            for key, receiver, integration, status, payload in rows
        ]

    def arrivals(self) -> Counter[tuple[str, str]]:
        """(destination, idempotency key) → how many times it arrived."""
        got: Counter[tuple[str, str]] = Counter()
        for _, rcpts, data in list(self.smtp_messages):
            key = email.message_from_bytes(data)["Message-ID"].strip("<>").split("@")[0]
            got.update((rcpt, key) for rcpt in rcpts)
        for request in list(self.slack.requests):
            if request.status == 200:
                channel = json.loads(request.body)["channel"]
                got[(channel, request.headers["idempotency-key"])] += 1
        for request in list(self.sms.requests):
            if request.status == 200:
                key, _, number = request.headers["idempotency-key"].partition("-")
                got[(f"sms:{number}", key)] += 1
        if self.state.exists():
            with sqlite3.connect(self.state) as db:
                got.update(("dashboard", k) for (k,) in db.execute(_DASHBOARD_KEYS))
        return got

    def told(self, alertname: str, status: str) -> set[tuple[str, str]]:
        """The receiver integrations `alertname` in `status` has arrived at."""
        arrived = {key for _, key in self.arrivals()}
        return {
            (row["receiver"], row["integration"])
            for row in self.outbox()
            if row["key"] in arrived and (alertname, status) in row["alerts"]
        }

    def all_arrived(self) -> bool:
        """Every row not failed for good has arrived and is marked delivered (a failed one is
        asserted on later). The mark comes after the arrival: senders commit them in batches."""
        rows = [r for r in self.outbox() if r["status"] != "failed"]
        arrived = self.arrivals()
        return bool(rows) and all(
            r["status"] == "delivered"
            and (DESTINATION[(r["receiver"], r["integration"])], r["key"]) in arrived
            for r in rows
        )

    def assert_none_lost_none_repeated(
        self, failed: Iterable[str] = (), *, pending_ok: bool = False
    ) -> None:
        """Every row delivered (but those with a key in `failed`) and arrived where it was
        sent; nothing else arrived; a key arrived at most once more per kill. `pending_ok`:
        rows still pending (made just before the monitor stopped) may have arrived or not."""
        failed = set(failed)
        rows = self.outbox()
        pending = {r["key"] for r in rows if r["status"] == "pending"} if pending_ok else set()
        checked = [r for r in rows if r["key"] not in failed | pending]
        assert {r["status"] for r in checked} == {"delivered"}, rows
        expected = {(DESTINATION[(r["receiver"], r["integration"])], r["key"]) for r in checked}
        arrived = self.arrivals()
        unchecked = {k for k in arrived if k[1] in pending}
        assert set(arrived) - unchecked == expected, (sorted(set(arrived) ^ expected), rows)
        assert max(arrived.values()) <= 1 + self.kills, arrived
