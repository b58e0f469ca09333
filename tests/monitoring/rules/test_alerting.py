import json
import time

import pytest

from monitoring.monitor.api_json import rule_json
from monitoring.rules.alerting import (
    FIRING,
    INACTIVE,
    PENDING,
    AlertingRule,
    RecordingRule,
    fingerprint,
)
from monitoring.rules.engine import Engine, QueryError
from monitoring.rules.group import RuleGroup
from monitoring.tsdb.store import Matcher, SampleStore, labels_from

MIN = 60_000


def _cpu(store, t_ms, value, instance="web1"):
    store.append(labels_from({"__name__": "cpu", "instance": instance}), t_ms, value)


def _rule(**kw):
    return AlertingRule(
        "CpuHigh",
        "cpu > 85",
        for_s=kw.pop("for_s", 120),
        labels={"severity": "warning"},
        annotations={"summary": "{{ $labels.instance }} at {{ $value }}%"},
        **kw,
    )


def test_lifecycle_pending_firing_resolved_and_forgotten():
    store, rule = SampleStore(), _rule()
    engine = Engine(store)
    states = []
    for minute, value in enumerate([90, 91, 92, 10, 10]):
        _cpu(store, minute * MIN, value)
        rule.eval(minute * MIN, engine)
        states.append([a.state for a in rule.alerts()])
    assert states == [[PENDING], [PENDING], [FIRING], [INACTIVE], [INACTIVE]]
    (alert,) = rule.alerts()
    assert alert.resolved_at_ms == 3 * MIN and alert.fired_at_ms == 2 * MIN
    assert alert.annotations == {"summary": "web1 at 92%"}
    assert dict(alert.labels) == {"alertname": "CpuHigh", "instance": "web1", "severity": "warning"}
    # resolved alerts are kept 15 minutes for notification, then dropped
    _cpu(store, 19 * MIN, 10)
    rule.eval(19 * MIN, engine)
    assert rule.alerts() == []


def _states(samples) -> list[str]:
    return [dict(s.labels)["alertstate"] for s in samples if dict(s.labels)["__name__"] == "ALERTS"]


def test_an_alert_that_recurs_within_the_resolved_retention_fires_again():
    # pending -> firing -> resolved, then the condition returns while the resolved alert is still
    # kept for notification: a new pending alert with its own `for` clock, which fires again.
    store, rule = SampleStore(), _rule()
    engine = Engine(store)
    seen = []
    for minute, value in enumerate([90, 91, 92, 10, 95, 96, 97, 10]):
        _cpu(store, minute * MIN, value)
        samples = rule.eval(minute * MIN, engine)
        (alert,) = rule.alerts()
        seen.append((alert.state, _states(samples), alert.active_at_ms // MIN))
    assert seen == [
        (PENDING, [PENDING], 0),
        (PENDING, [PENDING], 0),
        (FIRING, [FIRING], 0),
        (INACTIVE, [], 0),  # resolved at 3m, kept 15 minutes
        (PENDING, [PENDING], 4),  # back within the retention: `for` starts again at 4m
        (PENDING, [PENDING], 4),
        (FIRING, [FIRING], 4),  # 2 minutes after its new activation
        (INACTIVE, [], 4),
    ]
    (alert,) = rule.alerts()
    assert alert.fired_at_ms == 6 * MIN and alert.resolved_at_ms == 7 * MIN
    assert alert.annotations == {"summary": "web1 at 97%"}
    # The retention counts from the second resolution: kept at 22m, forgotten after 22m.
    _cpu(store, 22 * MIN, 10)
    rule.eval(22 * MIN, engine)
    assert [a.state for a in rule.alerts()] == [INACTIVE]
    _cpu(store, 23 * MIN, 10)
    rule.eval(23 * MIN, engine)
    assert rule.alerts() == []


def test_a_recurring_alert_reports_its_new_activation_in_alerts_for_state():
    store, rule = SampleStore(), _rule(for_s=0)
    engine = Engine(store)
    outputs = []
    for minute, value in enumerate([90, 10, 90]):
        _cpu(store, minute * MIN, value)
        outputs.append(
            {dict(s.labels)["__name__"]: s.value for s in rule.eval(minute * MIN, engine)}
        )
    assert outputs == [
        {"ALERTS": 1.0, "ALERTS_FOR_STATE": 0},
        {},
        {"ALERTS": 1.0, "ALERTS_FOR_STATE": 2 * MIN // 1000},
    ]


def test_a_resolved_alert_is_kept_15_minutes_to_the_millisecond():
    store, rule = SampleStore(), _rule(for_s=0)
    engine = Engine(store)
    _cpu(store, 0, 90)
    rule.eval(0, engine)
    _cpu(store, MIN, 10)
    rule.eval(MIN, engine)
    (alert,) = rule.alerts()
    assert alert.state == INACTIVE and alert.resolved_at_ms == MIN
    rule.eval(MIN + 15 * MIN, engine)  # exactly 15 minutes: still kept
    assert rule.alerts() == [alert]
    rule.eval(MIN + 15 * MIN + 1, engine)
    assert rule.alerts() == []


def test_fingerprints_are_16_hex_digits_of_the_whole_label_set():
    a = labels_from({"alertname": "CpuHigh", "instance": "web1"})
    same = labels_from({"instance": "web1", "alertname": "CpuHigh"})
    other = labels_from({"alertname": "CpuHigh", "instance": "web2"})
    assert fingerprint(a) == fingerprint(same)
    assert len(fingerprint(a)) == 16 and int(fingerprint(a), 16) >= 0
    assert fingerprint(a) != fingerprint(other) != fingerprint(())


def test_a_rule_not_yet_evaluated_reports_go_zero_time_and_unknown_health():
    api = rule_json(_rule())
    assert api["lastEvaluation"] == "0001-01-01T00:00:00Z"
    assert api["health"] == "unknown" and api["lastError"] == "" and api["alerts"] == []
    assert api["state"] == INACTIVE and api["duration"] == 120 and api["keepFiringFor"] == 0
    assert rule_json(_rule(keep_firing_for_s=90))["keepFiringFor"] == 90


def test_snapshot_restore_keeps_for_progress_across_restart():
    store, rule = SampleStore(), _rule()
    engine = Engine(store)
    _cpu(store, 0, 90)
    rule.eval(0, engine)
    snapshot = json.loads(json.dumps(rule.state_snapshot()))  # what the monitor stores

    restarted = _rule()
    assert restarted.restore(snapshot) == 1
    _cpu(store, 2 * MIN, 95)
    restarted.eval(2 * MIN, engine)
    # `for` counted from the original activation, so it fires now instead of pending again
    assert [a.state for a in restarted.alerts()] == [FIRING]
    assert restarted.alerts()[0].active_at_ms == 0


def test_group_feeds_later_rules_and_survives_a_bad_rule():
    store = SampleStore()
    engine = Engine(store)
    _cpu(store, 0, 90, "a")
    _cpu(store, 0, 95, "b")
    group = RuleGroup(
        "g",
        "rules.yml",
        60,
        [
            RecordingRule("instance:cpu:max", "max(cpu)"),
            # fails at evaluation: many-to-many after dropping the name
            RecordingRule("broken", "abs(cpu) + on () abs(cpu)"),
            AlertingRule("MaxHigh", "instance:cpu:max > 90"),
        ],
    )
    active = group.eval(0, engine, store)
    health = [(r.name, r.health) for r in group.rules]
    assert health == [("instance:cpu:max", "ok"), ("broken", "err"), ("MaxHigh", "ok")]
    assert "many-to-many" in group.rules[1].last_error or "duplicate" in group.rules[1].last_error
    assert [a.state for a in active] == [FIRING]
    assert store.select([Matcher("__name__", "=", "ALERTS")], 0, 0)[0].values == [1.0]


def test_rule_output_that_disappears_is_marked_stale():
    store = SampleStore()
    engine = Engine(store)
    group = RuleGroup("g", "f", 60, [RecordingRule("r", "cpu")])
    _cpu(store, 0, 1)
    group.eval(0, engine, store)
    group.eval(4 * MIN, engine, store)
    group.eval(6 * MIN, engine, store)  # cpu is past the lookback: no output, r goes stale
    assert engine.instant("r", 5 * MIN).samples[0].value == 1
    # without the marker the 4m sample would stay visible until 9m
    assert engine.instant("r", 7 * MIN).samples == []


def _evaluated_group(value: float = 90) -> RuleGroup:
    store = SampleStore()
    _cpu(store, 0, value)
    group = RuleGroup("g", "f", 60, [_rule()])
    group.eval(0, Engine(store), store)
    return group


def test_copy_state_only_for_unchanged_rules():
    old = _evaluated_group()
    same = RuleGroup("g", "f", 60, [_rule()])
    same.copy_state_from(old)
    assert len(same.alerts()) == 1
    changed = RuleGroup("g", "f", 60, [_rule(for_s=600)])
    changed.copy_state_from(old)
    assert changed.alerts() == []


def test_limit_turns_too_many_alerts_into_an_error():
    store = SampleStore()
    engine = Engine(store)
    for i in range(3):
        _cpu(store, 0, 99, f"w{i}")
    group = RuleGroup("g", "f", 60, [_rule(for_s=0)], limit=2)
    group.eval(0, engine, store)
    assert group.rules[0].last_error == "exceeded limit of 2 with 3 alerts"
    assert group.alerts() == []


def test_a_removed_group_ends_its_series():
    store = SampleStore()
    engine = Engine(store)
    _cpu(store, 0, 1)
    group = RuleGroup("g", "f", 60, [RecordingRule("r", "cpu")])
    group.eval(0, engine, store)
    group.mark_stale(store, MIN)
    assert engine.instant("r", 30_000).samples[0].value == 1
    assert engine.instant("r", 2 * MIN).samples == []


def test_a_group_counts_evaluations_and_failures_and_keeps_them_across_a_reload():
    store = SampleStore()
    engine = Engine(store)
    for i in ("1", "2"):
        store.append(labels_from({"__name__": "x", "i": i}), 0, 1)
    rules = lambda: [RecordingRule("ok", "sum(x)"), RecordingRule("bad", "x + on() x")]  # noqa: E731
    group = RuleGroup("g", "f", 60, rules())
    group.eval(0, engine, store)
    group.eval(MIN, engine, store)
    assert (group.evaluations_total, group.evaluation_failures_total) == (4, 2)
    reloaded = RuleGroup("g", "f", 60, rules())
    reloaded.copy_state_from(group)
    reloaded.eval(2 * MIN, engine, store)
    assert (reloaded.evaluations_total, reloaded.evaluation_failures_total) == (6, 3)


def test_fingerprint_is_prometheus_label_set_fingerprint():
    """prometheus/common's model.LabelSet.Fingerprint (Alertmanager's alert fingerprint), with
    the values of its own test (signature_test.go), in 16 hex digits."""
    assert fingerprint(()) == f"{14695981039346656037:016x}"
    garland = {"name": "garland, briggs", "fear": "love is not enough"}
    assert fingerprint(garland) == f"{5799056148416392346:016x}"
    # The same set, whatever the order or form it comes in; any other set differs.
    assert fingerprint(tuple(reversed(sorted(garland.items())))) == fingerprint(garland)
    assert fingerprint(labels_from(garland)) == fingerprint(garland)
    assert fingerprint({**garland, "fear": "love is enough"}) != fingerprint(garland)
    # A name/value boundary cannot be moved without changing the hash (0xff separates them).
    assert fingerprint({"ab": "c"}) != fingerprint({"a": "bc"})


def test_keep_firing_for_holds_a_firing_alert_that_lost_its_result_for_exactly_that_long():
    store, rule = SampleStore(), _rule(for_s=0, keep_firing_for_s=120)
    engine = Engine(store)
    states = []
    for minute, value in enumerate([90, 10, 10, 10]):
        _cpu(store, minute * MIN, value)
        rule.eval(minute * MIN, engine)
        states.append([(a.state, a.keep_firing_since_ms) for a in rule.alerts()])
    assert states == [
        [(FIRING, None)],
        [(FIRING, MIN)],  # lost at 1m: kept firing
        [(FIRING, MIN)],  # 1 minute of the 2
        [(INACTIVE, MIN)],  # 2 minutes: resolved
    ]
    assert rule.alerts()[0].resolved_at_ms == 3 * MIN
    # keep_firing_for holds firing alerts only: a pending one that loses its result is gone.
    store, rule = SampleStore(), _rule(for_s=120, keep_firing_for_s=120)
    _cpu(store, 0, 90)
    assert len(rule.eval(0, Engine(store))) == 2
    _cpu(store, MIN, 10)
    assert rule.eval(MIN, Engine(store)) == [] and rule.alerts() == []


def test_rule_api_shapes_before_and_after_evaluation():
    rule = RecordingRule("instance:cpu:max", "max(cpu)")
    assert rule_json(rule) == {
        "name": "instance:cpu:max",
        "query": "max(cpu)",
        "labels": {},
        "health": "unknown",
        "lastError": "",
        "evaluationTime": 0.0,
        "lastEvaluation": "0001-01-01T00:00:00Z",
        "type": "recording",
    }
    store = SampleStore()
    _cpu(store, 0, 90, "a")
    _cpu(store, 0, 95, "b")
    broken = RecordingRule("broken", "abs(cpu) + on () abs(cpu)")  # many-to-many: fails
    group = RuleGroup("g", "f", 60, [rule, broken])
    started = time.perf_counter()
    group.eval(0, Engine(store), store)
    took = time.perf_counter() - started
    assert rule_json(rule)["health"] == "ok" and rule_json(rule)["lastError"] == ""
    assert 0 < rule.eval_duration_s <= took  # a part of the group's evaluation, never more
    assert rule_json(broken)["health"] == "err"
    assert rule_json(broken)["lastError"] == broken.last_error != ""


def test_a_renamed_or_retyped_rule_does_not_inherit_alert_state():
    old = _evaluated_group()
    renamed = AlertingRule("CpuHot", "cpu > 85", for_s=120, labels={"severity": "warning"})
    assert not renamed.same_definition(old.rules[0])
    assert not RecordingRule("CpuHigh", "cpu > 85").same_definition(old.rules[0])
    assert not RecordingRule("a", "cpu").same_definition(RecordingRule("b", "cpu"))
    assert RecordingRule("a", "cpu").same_definition(RecordingRule("a", "cpu"))
    group = RuleGroup("g", "f", 60, [renamed])
    group.copy_state_from(old)
    assert group.alerts() == []


@pytest.mark.parametrize(("limit", "error"), [(0, None), (3, None), (2, 2), (1, 1)])
def test_a_recording_rule_limit_counts_its_series(limit, error):
    store = SampleStore()
    for i in range(3):
        _cpu(store, 0, i, f"w{i}")
    rule = RecordingRule("r", "cpu")
    if error is None:
        assert len(rule.eval(0, Engine(store), limit=limit)) == 3
        assert len(rule.eval(0, Engine(store))) == 3  # no limit by default
    else:
        with pytest.raises(QueryError, match=f"^exceeded limit of {error} with 3 series$"):
            rule.eval(0, Engine(store), limit=limit)


def test_alert_labels_and_annotations_are_templates_and_the_value_follows_each_evaluation():
    store = SampleStore()
    engine = Engine(store)
    rule = AlertingRule(
        "CpuHigh",
        "cpu > 85",
        for_s=120,
        labels={"severity": "warning", "host": "{{ $labels.instance }}-cpu"},
        annotations={"runbook": "{{ $externalURL }}/alerts?host={{ $labels.instance }}"},
        external_url="http://monitor.example:9090",
    )
    for minute, value in enumerate([90, 97]):
        _cpu(store, minute * MIN, value)
        rule.eval(minute * MIN, engine)  # no limit by default, whatever the alert count
    (alert,) = rule.alerts()
    assert dict(alert.labels)["host"] == "web1-cpu" and dict(alert.labels)["severity"] == "warning"
    assert alert.annotations == {"runbook": "http://monitor.example:9090/alerts?host=web1"}
    assert alert.value == 97 and alert.active_at_ms == 0


def test_an_alerting_rule_has_no_alert_limit_by_default():
    store = SampleStore()
    for i in range(3):
        _cpu(store, 0, 99, f"w{i}")
    rule = _rule(for_s=0)
    assert len(rule.eval(0, Engine(store))) == 6  # ALERTS and ALERTS_FOR_STATE per alert
    assert [a.state for a in rule.alerts()] == [FIRING] * 3


def test_one_alert_resolving_does_not_end_the_evaluation_of_the_others():
    store, rule = SampleStore(), _rule(for_s=0)
    engine = Engine(store)
    for instance in ("web1", "web2"):  # web1 first: it is looked at first when it resolves
        _cpu(store, 0, 95, instance)
    rule.eval(0, engine)
    _cpu(store, MIN, 10, "web1")
    _cpu(store, MIN, 96, "web2")
    samples = rule.eval(MIN, engine)
    assert [(dict(s.labels)["__name__"], dict(s.labels)["instance"]) for s in samples] == [
        ("ALERTS", "web2"),
        ("ALERTS_FOR_STATE", "web2"),
    ]
    assert [(dict(a.labels)["instance"], a.state) for a in rule.alerts()] == [
        ("web1", INACTIVE),
        ("web2", FIRING),
    ]


def test_alerts_for_state_holds_whole_seconds_of_the_activation():
    store, rule = SampleStore(), _rule()
    _cpu(store, 90_000, 95)
    samples = rule.eval(90_500, Engine(store))
    (for_state,) = [s for s in samples if dict(s.labels)["__name__"] == "ALERTS_FOR_STATE"]
    assert for_state.value == 90 and rule.alerts()[0].active_at_ms == 90_500


@pytest.mark.parametrize(("limit", "error"), [(0, False), (3, False), (2, True), (1, True)])
def test_an_alerting_rule_limit_counts_its_alerts(limit, error):
    store = SampleStore()
    for i in range(3):
        _cpu(store, 0, 99, f"w{i}")
    rule = _rule(for_s=0)
    if error:
        with pytest.raises(QueryError, match=f"^exceeded limit of {limit} with 3 alerts$"):
            rule.eval(0, Engine(store), limit=limit)
    else:
        assert len(rule.eval(0, Engine(store), limit=limit)) == 6


def test_restore_brings_back_every_valid_alert_with_its_annotations():
    store, rule = SampleStore(), _rule()
    for instance in ("web1", "web2"):
        _cpu(store, 0, 95, instance)
    rule.eval(0, Engine(store))
    snapshot = json.loads(json.dumps(rule.state_snapshot()))
    unknown = {**snapshot[0], "state": "exploded", "labels": [["alertname", "Other"]]}
    restarted = _rule()
    assert restarted.restore([unknown, *snapshot]) == 2  # the unknown state is skipped
    assert [(dict(a.labels)["instance"], a.annotations) for a in restarted.alerts()] == [
        ("web1", {"summary": "web1 at 95%"}),
        ("web2", {"summary": "web2 at 95%"}),
    ]
