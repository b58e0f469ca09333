"""Issue 10's notification drills, on real processes: receivers down, the monitor SIGKILLed.

A real `manage.py monitor run` with the shipped alertmanager.yml (group_interval shortened to
1s so a resolution need not wait 5 minutes; nothing else changed), its endpoints from the
environment pointing at real local servers: aiosmtpd for email, a recording HTTP server for
the Slack webhook and one for the SMS API; the dashboard channel writes the state file. Rules
on a local exporter fire and resolve when the test changes its body.

Every check counts by idempotency key: each outbox row (one per notification and receiver
integration) must have arrived where its integration sends (the email's Message-ID at its
address, the Slack and SMS requests' Idempotency-Key header, the dashboard row's key), and
nothing else may arrive. A key arrives at most once more per kill (a kill between a send and
its `delivered` mark).

The receivers and the counting are tests/monitoring/notify/drill_receivers.py. The PostgreSQL
drill (the monitor notifies while the shop's database is cut) is in
tests/monitoring/monitor/test_postgres_outage.py, inside that test's 2-minute cut.
"""

# ruff: noqa: F811 (the fixture imported from test_run is a parameter below)
from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from monitoring.notify.pipeline import CHANNEL_DOWN
from tests.monitoring.monitor.exporter import Exporter
from tests.monitoring.monitor.test_run import MonitorProcess, database  # noqa: F401
from tests.monitoring.notify.drill_receivers import (
    CRITICAL_DEVELOPMENT,
    CRITICAL_DEVOPS,
    ONCALL_SMS,
    WARNING_DEVELOPMENT,
    Receivers,
    shipped_notify_config,
)
from tests.wait import wait_for

pytestmark = pytest.mark.slow

OUTAGE_S = 120  # the acceptance's 2 minutes
ALERTS = {
    # alertname: labels; each alert is its own group (the shipped group_by: alertname, team)
    "DrillA": {"severity": "critical", "team": "devops"},
    "DrillB": {"severity": "critical", "team": "devops"},
    "DrillC": {"severity": "critical", "team": "development"},
    "DrillD": {"severity": "critical", "team": "devops"},
    "DrillW": {"severity": "warning", "team": "development"},
    "DrillE": {"severity": "critical", "team": "devops"},
}


def _rules() -> str:
    rules = [
        f"      - alert: {name}\n"
        f"        expr: {name.lower()} > 0\n"
        f"        labels: {json.dumps(labels)}\n"
        f"        annotations: {{summary: '{name} drill'}}\n"
        for name, labels in ALERTS.items()
    ]
    return "groups:\n  - name: drill\n    rules:\n" + "".join(rules)


class Drill(Receivers):
    """The receivers, the rules' exporter and the monitor of one drill."""

    def __init__(self, tmp: Path, base_env: dict[str, str], exporter: Exporter, **env: str):
        super().__init__(tmp / "state.sqlite3")
        self.exporter = exporter
        self.set_firing()
        (tmp / "rules.yml").write_text(_rules())
        self.config = tmp / "prometheus.yml"
        # Scrapes every second, not 300 ms: a scrape's timeout is its interval, and one that
        # timed out on a loaded machine made an alert resolve in the middle of a drill.
        self.config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: ['rules.yml']\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        )
        self.monitor_env = {
            **base_env,
            "MONITOR_DATA_DIR": str(tmp / "data"),
            "MONITOR_STATE_PATH": str(self.state),
            **self.env(shipped_notify_config(tmp / "alertmanager.yml")),
            **env,
        }
        self.monitor: MonitorProcess | None = None

    def set_firing(self, *names: str) -> None:
        self.exporter.body = "".join(f"{name.lower()} {int(name in names)}\n" for name in ALERTS)

    def start(self) -> MonitorProcess:
        self.monitor = MonitorProcess(self.config, self.monitor_env)
        return self.monitor

    def kill(self) -> None:
        assert self.monitor is not None
        self.monitor.proc.send_signal(signal.SIGKILL)  # no shutdown: what was written stays
        self.monitor.proc.wait(timeout=30)
        self.monitor.client.close()
        self.kills += 1

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        super().close()


def _pairs(routes, alertname: str, status: str) -> set[tuple]:
    return {(receiver, integration, alertname, status) for receiver, integration in routes}


@pytest.fixture
def drill(tmp_path, database):
    made: list[Drill] = []
    with Exporter() as exporter:

        def make(**env: str) -> Drill:
            made.append(Drill(tmp_path, database, exporter, **env))
            return made[-1]

        yield make
        for d in made:
            d.close()


def test_slack_500_for_two_minutes_smtp_down_and_a_sigkill_lose_nothing(drill):
    """Slack answers 500 for 2 minutes; the SMTP server is down for the first minute of them;
    meanwhile three alerts fire, one resolves, and the monitor is SIGKILLed while those are
    being retried and while an SMS request is in flight (the SMS API received it, the monitor
    never heard back) and started again, as `make up`'s supervisor does. After recovery every
    notification has arrived everywhere it was routed, once, but for the in-flight SMS, which
    arrived twice with the same key; NotificationChannelDown was never raised (the outage is
    shorter than NOTIFY_DELIVERY_DEADLINE, 10m by default)."""
    d = drill()
    d.set_firing("DrillA")
    monitor = d.start()
    wait_for(lambda: d.told("DrillA", "firing") == set(CRITICAL_DEVOPS), 60, "DrillA told")

    # The outage: Slack answers 500, the SMTP port is closed, the SMS API holds requests open.
    outage_at = time.monotonic()
    d.slack.status = 500
    d.smtp_stop()
    d.sms.hold.clear()
    sms_before = len(d.sms.requests)
    d.set_firing("DrillB", "DrillC", "DrillW")  # DrillA resolves

    def slack_retried() -> bool:
        tries = Counter(r.headers["idempotency-key"] for r in d.slack.requests if r.status == 500)
        return any(n >= 2 for n in tries.values())

    wait_for(lambda: slack_retried() and len(d.sms.requests) > sms_before, 60, "retrying")
    in_flight = d.sms.requests[sms_before].headers["idempotency-key"]
    d.kill()
    d.sms.hold.set()  # the held request is answered to a process that is gone
    monitor = d.start()  # the supervisor's restart
    d.set_firing("DrillB", "DrillC", "DrillW", "DrillD")  # a new alert after the restart

    wait_for(lambda: time.monotonic() - outage_at >= OUTAGE_S / 2, OUTAGE_S, "half the outage")
    d.smtp_start()
    wait_for(lambda: time.monotonic() - outage_at >= OUTAGE_S, OUTAGE_S, "the outage")
    assert monitor.proc.poll() is None, "".join(monitor.output)
    d.slack.status = 200

    # Retries back off to 60 s (×0.5–1.5): the last one may come 90 s after Slack is back.
    wait_for(d.all_arrived, 150, "every notification arrived after the recovery")
    rows = d.outbox()
    told = {
        (r["receiver"], r["integration"], name, status)
        for r in rows
        for name, status in r["alerts"]
    }
    assert told == (
        _pairs(CRITICAL_DEVOPS, "DrillA", "firing")
        | _pairs(CRITICAL_DEVOPS, "DrillA", "resolved")
        | _pairs(CRITICAL_DEVOPS, "DrillB", "firing")
        | _pairs(CRITICAL_DEVELOPMENT, "DrillC", "firing")
        | _pairs(WARNING_DEVELOPMENT, "DrillW", "firing")
        | _pairs(CRITICAL_DEVOPS, "DrillD", "firing")
    ), sorted(told)  # no NotificationChannelDown
    assert len(rows) == len(told)  # one alert a notification, none made twice
    d.assert_none_lost_none_repeated()
    # The kill between the SMS API's receipt and the `delivered` mark: one repeat, same key.
    assert d.arrivals()[(f"sms:{ONCALL_SMS}", in_flight.partition("-")[0])] == 2
    # The retries were real: Slack refused every notification made during the outage.
    refused = {r.headers["idempotency-key"] for r in d.slack.requests if r.status == 500}
    assert refused == {r["key"] for r in rows if r["receiver"].startswith("slack")} - {
        r["key"] for r in rows if ("DrillA", "firing") in r["alerts"]
    }
    assert CHANNEL_DOWN not in "".join(monitor.output)


def test_a_channel_down_past_the_deadline_is_told_to_the_others_and_resolves(drill):
    """With NOTIFY_DELIVERY_DEADLINE=5s, Slack answering 500 fails the notification: the other
    receivers of a critical alert are told NotificationChannelDown (Slack is not). The monitor
    is SIGKILLed and started again meanwhile; once Slack answers again, the next notification
    to it goes through and the others are told NotificationChannelDown resolved."""
    d = drill(NOTIFY_DELIVERY_DEADLINE="5s")
    d.slack.status = 500
    d.set_firing("DrillE")
    d.start()
    others = {k for k in CRITICAL_DEVOPS if k[0] != "slack-critical"}
    wait_for(lambda: d.told(CHANNEL_DOWN, "firing") == others, 60, "ChannelDown told")
    failed = {r["key"] for r in d.outbox() if r["status"] == "failed"}
    assert len(failed) == 1  # DrillE's firing notification to Slack
    d.kill()
    d.start()  # the supervisor's restart: what the others were told is in the state file

    d.slack.status = 200
    # DrillE still fires: the failed notification counts as not told, so the group's next
    # flush sends it to Slack again, which takes it; then the others hear ChannelDown resolved.
    wait_for(lambda: d.told(CHANNEL_DOWN, "resolved") == others, 60, "ChannelDown resolved")
    assert ("slack-critical", "slack/0") in d.told("DrillE", "firing")
    d.set_firing()  # DrillE resolves: everyone told it fired is told it resolved
    wait_for(lambda: d.told("DrillE", "resolved") == set(CRITICAL_DEVOPS), 60, "resolved")
    wait_for(d.all_arrived, 30, "the rest")  # nothing else pending
    # Slack's failed rows: the first, and any re-sent at a flush while it was still down.
    failed = {r["key"]: r for r in d.outbox() if r["status"] == "failed"}
    assert {(r["receiver"], r["integration"]) for r in failed.values()} == {
        ("slack-critical", "slack/0")
    }
    d.assert_none_lost_none_repeated(failed=failed)
