"""The notifier inside the monitor: NOTIFY_CONFIG loaded once for the pipeline and the API (a
bad file leaves the pipeline without routes and says why; the monitor runs on), fed after each
evaluation, counted on /metrics."""

from __future__ import annotations

import pytest

from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from monitoring.notify.notification import FIRING, RESOLVED
from monitoring.notify.pipeline import notified_alerts
from monitoring.rules.alerting import Alert
from tests.monitoring.notify.pipeline_helpers import Clock, alert

RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - alert: AlwaysOn
        expr: vector(1) > 0
        labels: {severity: critical, team: devops}
"""


def _monitor(tmp_path, notify_config: str, clock, rules: str = RULES) -> Monitor:
    (tmp_path / "prometheus.yml").write_text("rule_files: [rules.yml]\nscrape_configs: []\n")
    (tmp_path / "rules.yml").write_text(rules)
    env = {"NOTIFY_CONFIG": notify_config, "MONITOR_STATE_PATH": str(tmp_path / "s.sqlite3")}
    return Monitor(
        config_path=tmp_path / "prometheus.yml", settings=settings_from_env(env), clock=clock
    )


def test_a_bad_notifier_configuration_routes_nowhere_and_says_where(tmp_path):
    bad = tmp_path / "alertmanager.yml"
    bad.write_text("route:\n  receiver: nobody\nreceivers: []\n")
    monitor = _monitor(tmp_path, str(bad), Clock())
    try:
        assert monitor.notifier.config is None and monitor.notifier.route is None
        assert monitor.notify_errors and str(bad) in monitor.notify_errors[0]
        assert monitor.evaluate(monitor.groups[0], monitor.clock())  # the monitor runs on
    finally:
        monitor.stop()


def test_the_monitor_hands_its_alerts_to_the_notifier_and_counts_them(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monitor = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock)
    try:
        assert monitor.notifier is not None and monitor.notify_errors == []
        monitor.evaluate(monitor.groups[0], clock())  # for: 0 → firing at once
        assert monitor.notifier.alert_counts() == {"active": 1, "suppressed": 0}
        assert monitor.notifier.flush_due() >= 1  # the critical routes have group_wait 0s
        receivers = {r.receiver for r in monitor.state.outbox_rows()}
        assert {"dashboard", "slack-critical", "oncall", "email-devops"} <= receivers
        text = "\n".join(
            f"{s.name} {s.labels} {s.value}"
            for m in monitor.metrics_registry.collect()
            for s in m.samples
            if m.name.startswith("alertmanager_")
        )
        assert "alertmanager_alerts {'state': 'active'} 1" in text
        assert "alertmanager_notifications_total {'integration': 'sms'} 0" in text
    finally:
        monitor.stop()


@pytest.mark.parametrize(
    ("state", "fired", "resolved", "expected"),
    [
        ("pending", None, None, None),
        ("firing", 2_000, None, (FIRING, 2_000, None)),
        ("inactive", 2_000, 9_000, (RESOLVED, 2_000, 9_000)),
        ("inactive", None, 9_000, None),  # pending, then gone: never fired, nothing to tell
    ],
)
def test_notified_alerts_as_prometheus_sends_them(state, fired, resolved, expected):
    rule_alert = Alert(
        labels=(("alertname", "X"),),
        annotations={"summary": "s"},
        state=state,
        value=float("nan"),
        active_at_ms=1_000,
        fired_at_ms=fired,
        resolved_at_ms=resolved,
    )
    got = notified_alerts([rule_alert])
    if expected is None:
        assert got == []
    else:
        (a,) = got
        assert (a.status, a.starts_at_ms, a.ends_at_ms) == expected and a.value is None


def test_an_inhibited_alert_counts_as_suppressed(tmp_path):
    clock = Clock()
    monitor = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock)
    try:
        monitor.notifier.put(
            [alert(name="HighCpu", severity="critical"), alert(name="HighCpu", severity="warning")]
        )
        assert monitor.notifier.alert_counts() == {"active": 1, "suppressed": 1}
    finally:
        monitor.stop()


GOOD = """
route: {receiver: dashboard, group_wait: 0s}
receivers:
  - name: dashboard
    webhook_configs: [{url: "http://127.0.0.1:8000/api/monitoring/alertmanager/dashboard"}]
"""


def _reload_ok(monitor: Monitor) -> float:
    [value] = [
        s.value
        for m in monitor.metrics_registry.collect()
        for s in m.samples
        if s.name == "alertmanager_config_last_reload_successful"
    ]
    return value


def test_one_load_serves_the_pipeline_and_the_api_and_a_reload_switches_both(tmp_path):
    notify_file = tmp_path / "alertmanager.yml"
    notify_file.write_text("route: {receiver: nobody}\nreceivers: []\n")
    clock = Clock()
    monitor = _monitor(tmp_path, str(notify_file), clock)
    try:
        loaded, notifier = monitor.notifier_state.config, monitor.notifier
        assert loaded.config is None and notifier.config is None and _reload_ok(monitor) == 0
        monitor.evaluate(monitor.groups[0], clock())  # held, told nobody
        assert notifier.flush_due() == 0 and monitor.state.outbox_rows() == []

        notify_file.write_text(GOOD)
        assert monitor.reload() == [] and monitor.notify_errors == []
        assert monitor.notifier is notifier and notifier.config is loaded.config is not None
        assert loaded.text == GOOD and _reload_ok(monitor) == 1
        notifier.flush_due()  # the alert held while nothing loaded goes out now
        assert [r.receiver for r in monitor.state.outbox_rows()] == ["dashboard"]

        running = notifier.config
        notify_file.write_text("route: {receiver: dashboard}\nreceivers: [{name: x}]\n")
        monitor.reload()
        assert monitor.notify_errors and str(notify_file) in monitor.notify_errors[0]
        # Kept by both: the pipeline's configuration and the file the API shows.
        assert notifier.config is running and loaded.config is running and loaded.text == GOOD
        assert _reload_ok(monitor) == 0  # the last attempt
        # The held alerts are grouped by the new routes; the log keeps them from going twice.
        monitor.evaluate(monitor.groups[0], clock())
        notifier.flush_due()
        assert [r.receiver for r in monitor.state.outbox_rows()] == ["dashboard"]
        grouped = GOOD.replace(
            "receiver: dashboard, ", "receiver: dashboard, group_by: [alertname], "
        )
        notify_file.write_text(grouped)
        monitor.reload()
        assert monitor.notify_errors == [] and notifier.config is not running
        assert notifier.config is loaded.config and loaded.text == grouped
        assert _reload_ok(monitor) == 1
        notifier.flush_due()
        assert len(monitor.state.outbox_rows()) == 2  # another group key: a new group
        monitor.reload()  # the same file again: regrouped, nothing new to tell
        notifier.flush_due()
        assert len(monitor.state.outbox_rows()) == 2
    finally:
        monitor.stop()


def test_silences_plug_in_as_a_muter(tmp_path):
    class Silenced:
        def is_silenced(self, labels, now_ms: int) -> bool:
            return labels.get("alertname") == "AlwaysOn"

    clock = Clock()
    monitor = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock)
    try:
        monitor.notifier.use_muter(Silenced())
        monitor.evaluate(monitor.groups[0], clock())
        assert monitor.notifier.alert_counts() == {"active": 0, "suppressed": 1}
        monitor.notifier.flush_due()
        assert monitor.state.outbox_rows() == []  # silenced: nobody is told
    finally:
        monitor.stop()


def test_a_resolution_not_yet_told_when_the_monitor_stopped_is_told_after_the_restart(
    tmp_path, monkeypatch
):
    clock = Clock()
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monitor = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock)
    try:
        monitor.evaluate(monitor.groups[0], clock())  # firing
        monitor.notifier.flush_due()  # told (rows in the outbox, the log says so)
        clock.advance(10)
    finally:
        monitor.stop()
    # The rule stops firing and the evaluation records it resolved; the process dies before the
    # notifier's flush (a rule that no longer fires stands in for the condition gone).
    gone = RULES.replace("> 0", "< 0")
    monitor = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock, gone)
    monitor.restore()
    monitor.notifier.put = lambda alerts: None  # stands in for the kill before the flush
    monitor.evaluate(monitor.groups[0], clock())
    monitor.stop()  # not flushed: the notifier's memory is gone with the process

    clock.advance(5)
    restarted = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock, gone)
    try:
        restarted.restore()
        clock.advance(300)  # past every route's group_wait
        restarted.notifier.flush_due()
        resolved = {
            r.receiver
            for r in restarted.state.outbox_rows()
            if any(a["status"] == RESOLVED for a in r.payload["alerts"])
        }
        assert {"dashboard", "slack-critical", "oncall", "email-devops"} <= resolved
        # A second restart sends nothing again.
        before = len(restarted.state.outbox_rows())
    finally:
        restarted.stop()
    again = _monitor(tmp_path, "deploy/alertmanager/alertmanager.yml", clock, gone)
    try:
        again.restore()
        clock.advance(300)
        again.notifier.flush_due()
        assert len(again.state.outbox_rows()) == before
    finally:
        again.stop()
