"""Each pipeline stage alone, with a clock the test moves and a real state file."""

from __future__ import annotations

import pytest

from monitoring.monitor.state import LogEntry, StateStore
from monitoring.notify.config import config_load
from monitoring.notify.integrations import integrations_build
from monitoring.notify.routing import Route
from monitoring.notify.stages import (
    AggregationGroup,
    DedupStage,
    FlushContext,
    InhibitStage,
    OutboxStage,
    SilenceStage,
    TimeMuteStage,
    needs_update,
)
from tests.monitoring.notify.pipeline_helpers import Clock, alert, config, resolved

HOUR_MS = 3_600_000


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.sqlite3")
    yield s
    s.close()


def ctx(cfg, labels, now_ms, receiver="pager", **kw) -> FlushContext:
    route = next(r for r in Route.build(cfg.route).match(labels) if r.options.receiver == receiver)
    return FlushContext(
        now_ms=now_ms,
        route=route,
        receiver=receiver,
        group_key=route.group_key(labels),
        group_labels=route.group_labels(labels),
        **kw,
    )


# -- dedup: the pure decision ----------------------------------------------------------------
def entry(firing=(), resolved_=(), sent_ms=0, sequence=0):
    return LogEntry("r", "g", frozenset(firing), frozenset(resolved_), sequence, sent_ms)


@pytest.mark.parametrize(
    ("log", "firing", "resolved_", "send_resolved", "now_ms", "reason"),
    [
        (None, {"a"}, set(), True, 0, "first notification"),
        (None, set(), {"a"}, True, 0, ""),  # only resolved, never told: nothing
        (entry({"a"}), {"a", "b"}, set(), True, 1, "new firing alerts"),
        (entry({"a", "b"}), {"a"}, set(), False, 1, ""),  # one fewer firing, no resolved wanted
        (entry({"a", "b"}), {"a"}, {"b"}, True, 1, "new resolved alerts"),
        (entry({"a", "b"}), {"a"}, {"b"}, False, 1, ""),
        (entry({"a"}), set(), {"a"}, False, 1, "all resolved"),  # irrespective of send_resolved
        (entry(set()), set(), {"a"}, True, 1, ""),  # fired and resolved between two flushes
        (entry({"a"}, sent_ms=0), {"a"}, set(), True, HOUR_MS - 1, ""),
        (entry({"a"}, sent_ms=0), {"a"}, set(), True, HOUR_MS, "repeat interval passed"),
    ],
)
def test_needs_update_follows_the_notification_log(
    log, firing, resolved_, send_resolved, now_ms, reason
):
    got = needs_update(
        log,
        frozenset(firing),
        frozenset(resolved_),
        send_resolved=send_resolved,
        repeat_interval_ms=HOUR_MS,
        now_ms=now_ms,
    )
    assert got == reason


# -- dedup against the stored log -------------------------------------------------------------
def test_dedup_sends_once_then_on_change_then_on_repeat(store):
    cfg, clock = config(), Clock()
    stage = DedupStage(store, {"pager": True})
    a = alert(severity="critical")

    def flush(alerts, group_alerts=None):
        c = ctx(cfg, a.labels, clock(), group_alerts=tuple(group_alerts or alerts))
        out = stage.run(c, alerts)
        if out:  # what the outbox stage does with the entry
            store.outbox_enqueue(rows=[], log=c.log_entry)
        return out, c.log_entry

    out, log = flush([a])
    assert out == [a] and log.sequence == 0 and log.firing == {a.fingerprint}
    clock.advance(60)
    assert flush([a]) == ([], None)  # nothing changed
    clock.advance(3600)
    out, log = flush([a])  # the critical route's repeat_interval (1h)
    assert out == [a] and log.sequence == 1
    clock.advance(10)
    gone = resolved(a, clock())
    out, log = flush([gone])
    assert out == [gone] and log.firing == frozenset() and log.resolved == {a.fingerprint}
    clock.advance(10)
    assert flush([gone]) == ([], None)  # told already


def test_dedup_drops_a_resolution_the_receiver_was_never_told(store):
    cfg, clock = config(), Clock()
    stage = DedupStage(store, {"pager": True})
    a, b = alert(severity="critical"), alert(severity="critical", instance="web-2")
    c = ctx(cfg, a.labels, clock(), group_alerts=(a,))
    assert stage.run(c, [a]) == [a]
    store.outbox_enqueue(rows=[], log=c.log_entry)
    clock.advance(1)
    # b fired and resolved between two flushes: its resolution is not news to anyone.
    c = ctx(cfg, a.labels, clock(), group_alerts=(a, resolved(b, clock())))
    assert stage.run(c, [a, resolved(b, clock())]) == []


def test_a_silenced_alert_that_was_told_keeps_its_resolution(store):
    cfg, clock = config(), Clock()
    stage = DedupStage(store, {"pager": True})
    a, b = alert(severity="critical"), alert(severity="critical", instance="web-2")
    c = ctx(cfg, a.labels, clock(), group_alerts=(a, b))
    assert stage.run(c, [a, b]) == [a, b]
    store.outbox_enqueue(rows=[], log=c.log_entry)
    # b is silenced now (the silence stage dropped it); the repeat goes out with a only, but
    # b stays "told" in the log ...
    clock.advance(3600)
    c = ctx(cfg, a.labels, clock(), group_alerts=(a, b))
    assert stage.run(c, [a]) == [a]
    assert c.log_entry.firing == {a.fingerprint, b.fingerprint}
    store.outbox_enqueue(rows=[], log=c.log_entry)
    # ... so when it resolves, the receiver hears of it.
    clock.advance(10)
    gone = resolved(b, clock())
    c = ctx(cfg, a.labels, clock(), group_alerts=(a, gone))
    assert stage.run(c, [a, gone]) == [a, gone]


# -- muting -----------------------------------------------------------------------------------
def test_inhibit_drops_the_warning_of_a_critical_alert_on_the_same_instance():
    cfg, clock = config(), Clock()
    critical = alert(severity="critical")
    warning, other = alert(), alert(instance="web-2")
    c = ctx(cfg, warning.labels, clock(), receiver="team", firing_labels=[critical.labels])
    assert InhibitStage(cfg).run(c, [warning, other]) == [other]
    # A resolved alert always passes: dedup decides whether the receiver was told.
    gone = resolved(warning, clock())
    assert InhibitStage(cfg).run(c, [gone]) == [gone]


MUTED = """
route:
  receiver: r
  routes:
    - receiver: r
      mute_time_intervals: [weekend]
receivers: [{name: r}]
time_intervals:
  - name: weekend
    time_intervals: [{weekdays: [saturday, sunday]}]
"""


def test_time_mute_drops_firing_alerts_inside_the_mute_interval():
    cfg = config_load("muted.yml", env={}, text=MUTED)
    a = alert()
    friday = 1_796_421_600_000  # 2026-12-04, a Friday
    saturday = friday + 24 * HOUR_MS
    stage = TimeMuteStage(cfg)
    assert stage.run(ctx(cfg, a.labels, friday, receiver="r"), [a]) == [a]
    assert stage.run(ctx(cfg, a.labels, saturday, receiver="r"), [a]) == []
    gone = resolved(a, saturday)
    assert stage.run(ctx(cfg, a.labels, saturday, receiver="r"), [gone]) == [gone]


class InstanceSilence:
    """A Muter silencing one instance from a given time."""

    def __init__(self, instance: str, from_ms: int) -> None:
        self.instance, self.from_ms = instance, from_ms

    def is_silenced(self, labels, now_ms: int) -> bool:
        return labels.get("instance") == self.instance and now_ms >= self.from_ms


def test_silence_stage_asks_the_muter_at_the_flush_time():
    cfg, clock = config(), Clock()
    a, b = alert(), alert(instance="web-2")
    stage = SilenceStage(InstanceSilence("web-2", clock() + 1000))
    assert stage.run(ctx(cfg, a.labels, clock(), receiver="team"), [a, b]) == [a, b]
    assert stage.run(ctx(cfg, a.labels, clock() + 1000, receiver="team"), [a, b]) == [a]


# -- grouping ---------------------------------------------------------------------------------
def test_group_waits_then_flushes_every_interval_and_drops_sent_resolutions():
    cfg, clock = config(), Clock()
    route = Route.build(cfg.route).match(alert().labels)[0]  # team: group_wait 30s
    a = alert(starts_at_ms=clock())
    group = AggregationGroup.create(route, a.labels, clock())
    group.insert(a, clock())
    assert not group.due(clock())
    clock.advance(30)
    assert group.due(clock())
    group.flushed_at(clock(), dict(group.alerts))
    clock.advance(299)
    assert not group.due(clock())
    clock.advance(1)
    assert group.due(clock())
    gone = resolved(a, clock())
    group.insert(gone, clock())
    group.flushed_at(clock(), dict(group.alerts))
    assert group.alerts == {}


def test_group_of_an_alert_older_than_group_wait_flushes_at_once():
    """After a restart the group is new but the alert is not: nobody waits again."""
    cfg, clock = config(), Clock()
    route = Route.build(cfg.route).match(alert().labels)[0]
    old = alert(starts_at_ms=clock() - 600_000)
    group = AggregationGroup.create(route, old.labels, clock())
    group.insert(old, clock())
    assert group.due(clock())


# -- outbox -----------------------------------------------------------------------------------
def test_outbox_stage_writes_one_row_per_integration_with_the_log(store):
    cfg, clock = config(), Clock()
    integrations = integrations_build(cfg, state=store, env={})
    stage = OutboxStage(store, integrations, links={}, deadline_ms=600_000)
    a = alert(severity="critical")
    c = ctx(cfg, a.labels, clock())
    c.log_entry = LogEntry("pager", c.group_key, frozenset({a.fingerprint}), frozenset(), 0, 0)
    stage.run(c, [a])
    rows = store.outbox_rows()
    assert [(r.integration, r.status, r.attempts) for r in rows] == [
        ("webhook/0", "pending", 0),
        ("webhook/1", "pending", 0),
    ]
    assert rows[0].deadline_ms == clock() + 600_000
    assert store.notification_log_get(receiver="pager", group_key=c.group_key).firing == {
        a.fingerprint
    }
    # The resolution: only the integration with send_resolved gets a row.
    clock.advance(60)
    gone = resolved(a, clock())
    c = ctx(cfg, a.labels, clock())
    c.log_entry = LogEntry("pager", c.group_key, frozenset(), frozenset({a.fingerprint}), 1, 0)
    stage.run(c, [gone])
    new = store.outbox_rows()[2:]
    assert [r.integration for r in new] == ["webhook/0"]
    assert [x["status"] for x in new[0].payload["alerts"]] == ["resolved"]
    # The same notification again (a flush repeated after a crash) is not a second row.
    stage.run(c, [gone])
    assert len(store.outbox_rows()) == 3
