"""Alert state in the database: rows follow the engine's alerts, transitions are append-only."""

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.monitor.config import settings_from_env
from monitoring.monitor.evaluate import (
    AlertRecord,
    alert_transitions_after,
    alerts_active,
    alerts_persist,
    alerts_retire,
    fingerprint_of,
)
from monitoring.monitor.models import AlertInstance, AlertTransition
from monitoring.monitor.runtime import Monitor

pytestmark = [pytest.mark.django_db, pytest.mark.db]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CPU = {"alertname": "HighCpuUsage", "severity": "warning", "instance": "web1"}


def _alert(state: str, *, labels=CPU, at=T0, fired=None, value=91.5) -> AlertRecord:
    return AlertRecord(
        labels=labels,
        annotations={"summary": "High CPU usage detected"},
        state=state,
        active_at=at,
        fired_at=fired,
        value=value,
    )


def _persist(*alerts: AlertRecord, at: datetime, group: str = "system"):
    return alerts_persist(group=group, rule_file="alert_rules.yml", alerts=alerts, evaluated_at=at)


def test_a_full_lifecycle_records_each_transition_once():
    (t1,) = _persist(_alert("pending"), at=T0)
    assert (t1.from_state, t1.to_state) == ("inactive", "pending")
    assert _persist(_alert("pending"), at=T0 + timedelta(minutes=1)) == []
    fired_at = T0 + timedelta(minutes=5)
    (t2,) = _persist(_alert("firing", fired=fired_at), at=fired_at)
    assert (t2.from_state, t2.to_state) == ("pending", "firing") and t2.fired_at == fired_at
    # The engine keeps a resolved alert (inactive, resolved_at set) for a while: one transition.
    resolved_at = T0 + timedelta(minutes=9)
    resolved = AlertRecord(CPU, {}, "inactive", T0, fired_at, resolved_at, 12.0)
    (t3,) = _persist(resolved, at=resolved_at)
    assert t3.is_resolution and t3.resolved_at == resolved_at
    assert _persist(resolved, at=resolved_at + timedelta(minutes=1)) == []
    assert _persist(at=resolved_at + timedelta(minutes=20)) == []
    assert [t.id for t in AlertTransition.objects.all()] == sorted([t1.id, t2.id, t3.id])
    assert t1.id < t2.id < t3.id
    row = AlertInstance.objects.get()
    assert row.fingerprint == fingerprint_of(CPU)
    assert (row.state, row.fired_at, row.resolved_at, row.last_value) == (
        "inactive",
        fired_at,
        resolved_at,
        12.0,
    )


def test_an_alert_missing_from_the_result_is_resolved_by_the_monitor():
    _persist(_alert("firing", fired=T0), at=T0)
    later = T0 + timedelta(minutes=3)
    (transition,) = _persist(at=later)
    assert transition.is_resolution and transition.resolved_at == later
    assert alerts_active() == []


def test_a_pending_alert_that_goes_away_never_resolves():
    _persist(_alert("pending"), at=T0)
    (transition,) = _persist(at=T0 + timedelta(minutes=1))
    assert (transition.from_state, transition.to_state) == ("pending", "inactive")
    assert not transition.is_resolution and transition.resolved_at is None


def test_an_alert_that_comes_back_reuses_its_row_and_starts_a_new_episode():
    _persist(_alert("firing", fired=T0), at=T0)
    _persist(at=T0 + timedelta(minutes=1))
    again = T0 + timedelta(minutes=2)
    (transition,) = _persist(_alert("pending", at=again), at=again)
    row = AlertInstance.objects.get()
    assert (transition.from_state, transition.to_state) == ("inactive", "pending")
    assert row.state == "pending" and row.active_at == again and row.resolved_at is None


def test_groups_do_not_resolve_each_others_alerts():
    disk = {"alertname": "HighDiskUsage", "severity": "critical"}
    _persist(_alert("firing", fired=T0), at=T0, group="system")
    _persist(_alert("firing", labels=disk, fired=T0), at=T0, group="disk")
    assert _persist(_alert("firing", fired=T0), at=T0 + timedelta(minutes=1), group="system") == []
    assert {a.alertname for a in alerts_active()} == {"HighCpuUsage", "HighDiskUsage"}
    assert [a.alertname for a in alerts_active(group="disk")] == ["HighDiskUsage"]


def test_nan_values_are_stored_as_null():
    _persist(_alert("pending", value=float("nan")), at=T0)
    assert AlertInstance.objects.get().last_value is None


def test_alerts_of_removed_rules_are_retired():
    load = {"alertname": "HighLoad", "severity": "warning"}
    _persist(_alert("firing", fired=T0), _alert("pending", labels=load), at=T0)
    later = T0 + timedelta(minutes=1)
    (transition,) = alerts_retire(keep={("system", "HighCpuUsage")}, evaluated_at=later)
    assert transition.alertname == "HighLoad" and transition.to_state == "inactive"
    assert [a.alertname for a in alerts_active()] == ["HighCpuUsage"]


def test_a_consumer_reads_each_transition_once_in_order():
    _persist(_alert("pending"), at=T0)
    _persist(_alert("firing", fired=T0 + timedelta(minutes=5)), at=T0 + timedelta(minutes=5))
    first = alert_transitions_after(after_id=0, limit=1)
    assert [t.to_state for t in first] == ["pending"]
    rest = alert_transitions_after(after_id=first[-1].id)
    assert [t.to_state for t in rest] == ["firing"]
    assert rest[0].alert.state == "firing"
    _persist(at=T0 + timedelta(minutes=9))
    (resolution,) = alert_transitions_after(after_id=rest[-1].id)
    assert resolution.is_resolution
    assert alert_transitions_after(after_id=resolution.id) == []


@pytest.fixture
def monitor_at(tmp_path):
    """A Monitor (not started) with one alerting rule, whose clock the test sets."""
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: system\n    rules:\n"
        "      - alert: HighCpuUsage\n        expr: cpu_usage_percent > 85\n        for: 5m\n"
    )
    (tmp_path / "prometheus.yml").write_text("rule_files: [rules.yml]\n")

    def build(now: datetime) -> Monitor:
        return Monitor(
            config_path=tmp_path / "prometheus.yml",
            settings=settings_from_env({}),
            clock=lambda: int(now.timestamp() * 1000),
        )

    return build


def test_restore_brings_back_recent_state_only(monitor_at, tmp_path):
    rule_file = str(tmp_path / "rules.yml")
    recent = {**CPU, "instance": "web1"}
    stale = {**CPU, "instance": "web2"}
    now = T0 + timedelta(hours=3)
    at = now - timedelta(minutes=1)
    alerts_persist(
        group="system",
        rule_file=rule_file,
        alerts=[_alert("firing", labels=labels, at=at, fired=at) for labels in (recent, stale)],
        evaluated_at=at,
    )
    # web2's state was last written before an outage longer than the tolerance.
    AlertInstance.objects.filter(labels__instance="web2").update(
        last_evaluated_at=now - timedelta(hours=2)
    )
    monitor = monitor_at(now)
    assert monitor.restore() == 1
    (alert,) = monitor.groups[0].alerts()
    assert dict(alert.labels)["instance"] == "web1" and alert.state == "firing"
    assert alert.active_at_ms == int((now - timedelta(minutes=1)).timestamp() * 1000)
    monitor.stop()
