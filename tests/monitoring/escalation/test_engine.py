"""The escalation engine over a real state store: levels climb on their timers, once each;
level 1's action result is recorded and told; an acknowledgement stops the climb without
silencing; a resolution ends it and takes the customer notice down; a new episode starts over."""

from __future__ import annotations

import pytest

from monitoring.acknowledge import AckError, acknowledge_alert, acknowledge_by_name, alert_history
from monitoring.escalation import store as es
from monitoring.escalation.engine import escalate
from monitoring.escalation.policy import policies_load
from monitoring.escalation.status import status_notice, status_notice_clear_cache
from monitoring.monitor.state import StateStore
from monitoring.notify.notification import RESOLVED, NotifiedAlert

T0 = 1_796_421_600_000
POLICIES = """\
policies:
  - name: critical
    match: ['severity="critical"']
    levels:
      - level: 1
        after: 0s
        actions: [{action: clear_cache}]
        receivers: [team]
      - {level: 2, after: 10s, receivers: [oncall]}
      - {level: 3, after: 20s, receivers: [senior]}
      - {level: 4, after: 30s, receivers: [management], notice: {title: Slow shop, message: Sorry}}
"""


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.sqlite3")
    yield s
    s.close()


@pytest.fixture
def policies(tmp_path):
    return policies_load(tmp_path / "escalation.yml", POLICIES)


def _alert(name="DatabaseDown", severity="critical", starts=T0, ends=None) -> NotifiedAlert:
    return NotifiedAlert(
        labels={"alertname": name, "severity": severity},
        annotations={"summary": f"{name} summary"},
        starts_at_ms=starts,
        ends_at_ms=ends,
        status=RESOLVED if ends else "firing",
    )


class Sent(list):
    def __call__(self, receiver, alert, level):
        self.append((receiver, level, dict(alert.annotations)))


def test_an_unacknowledged_alert_climbs_each_level_once_on_its_timer(store, policies, tmp_path):
    store.alerts_received([_alert(), _alert("HighCpu", "warning")], at_ms=T0)
    sent = Sent()
    escalate(store, policies, now_ms=T0 + 1000, send=sent)
    assert [(r, lv) for r, lv, _ in sent] == [("team", 1)]
    assert "clear_cache" in sent[0][2]["automated_response"]
    assert "done" in sent[0][2]["automated_response"]
    escalate(store, policies, now_ms=T0 + 9000, send=sent)  # nothing due
    escalate(store, policies, now_ms=T0 + 10_000, send=sent)
    escalate(store, policies, now_ms=T0 + 10_500, send=sent)  # not twice
    assert [(r, lv) for r, lv, _ in sent] == [("team", 1), ("oncall", 2)]
    assert sent[1][2]["escalation_level"] == "2"
    assert sent[0][2]["escalation"].endswith("of policy critical: on firing")
    assert sent[1][2]["escalation"] == (
        "Escalation level 2 (on-call engineer) of policy critical: not acknowledged 10s after it fired"
    )
    state = str(tmp_path / "state.sqlite3")
    status_notice_clear_cache()
    assert status_notice(state) is None
    escalate(store, policies, now_ms=T0 + 31_000, send=sent)  # 3 and 4 both due
    assert [(r, lv) for r, lv, _ in sent][2:] == [("senior", 3), ("management", 4)]
    status_notice_clear_cache()
    notice = status_notice(state)
    assert notice["title"] == "Slow shop" and notice["message"] == "Sorry"

    # Resolved: the escalation ends and the notice comes down.
    store.alerts_received([_alert(ends=T0 + 40_000)], at_ms=T0 + 40_000)
    escalate(store, policies, now_ms=T0 + 41_000, send=sent)
    status_notice_clear_cache()
    assert status_notice(state) is None
    fp = _alert().fingerprint
    kinds = [(e.kind, e.level) for e in alert_history(fp, store=store)]
    assert kinds == [
        ("level", 1), ("action", 1), ("notify", 1), ("level", 2), ("notify", 2),
        ("level", 3), ("notify", 3), ("level", 4), ("notify", 4), ("end", None),
    ]  # fmt: skip
    # The warning matched no policy: never escalated.
    assert not alert_history(_alert("HighCpu", "warning").fingerprint, store=store)


def test_an_acknowledged_alert_stops_climbing_but_stays_firing_and_resolves(store, policies):
    store.alerts_received([_alert()], at_ms=T0)
    sent = Sent()
    escalate(store, policies, now_ms=T0 + 10_000, send=sent)
    ack = acknowledge_alert(
        _alert().fingerprint, "alice", "on it", store=store, now_ms=lambda: T0 + 12_000
    )
    assert (ack.by, ack.comment, ack.at_ms, ack.episode_ms) == ("alice", "on it", T0 + 12_000, T0)
    # A second acknowledgement does not replace the first.
    assert acknowledge_alert(_alert().fingerprint, "bob", store=store).by == "alice"
    escalate(store, policies, now_ms=T0 + 60_000, send=sent)
    assert [lv for _, lv, _ in sent] == [1, 2]
    assert [a.fingerprint for a in store.alerts_active()] == [_alert().fingerprint]  # not silenced
    store.alerts_received([_alert(ends=T0 + 70_000)], at_ms=T0 + 70_000)
    escalate(store, policies, now_ms=T0 + 71_000, send=sent)
    assert store.alerts_active() == []
    assert es.escalations_open(store) == []
    # Firing again is a new episode: the acknowledgement ended with the old one.
    store.alerts_received([_alert(starts=T0 + 100_000)], at_ms=T0 + 100_000)
    escalate(store, policies, now_ms=T0 + 111_000, send=sent)
    assert [lv for _, lv, _ in sent] == [1, 2, 1, 2]


def test_acknowledging_what_does_not_fire_is_refused(store):
    with pytest.raises(AckError):
        acknowledge_alert("0123456789abcdef", "alice", store=store)
    store.alerts_received([_alert(), _alert("Other")], at_ms=T0)
    with pytest.raises(AckError):
        acknowledge_by_name("Nope", "alice", store=store)
    with pytest.raises(ValueError):
        acknowledge_alert(_alert().fingerprint, " ", store=store)
    acks = acknowledge_by_name("Other", "carol", store=store)
    assert [a.alertname for a in acks] == ["Other"]


def test_two_engines_at_once_run_a_level_once(store, policies, tmp_path):
    store.alerts_received([_alert()], at_ms=T0)
    other = StateStore(tmp_path / "state.sqlite3")  # another process's connection
    try:
        sent = Sent()
        escalate(store, policies, now_ms=T0 + 1000, send=sent)
        escalate(other, policies, now_ms=T0 + 1000, send=sent)
        assert [lv for _, lv, _ in sent] == [1]
    finally:
        other.close()
