"""Silences: Alertmanager's states, update-or-replace, expiry, retention and persistence."""

from __future__ import annotations

import pytest

from monitoring.monitor.state import StateStore
from monitoring.notify.silences import (
    ACTIVE,
    EXPIRED,
    PENDING,
    Silence,
    SilenceError,
    SilenceNotFound,
    Silences,
    matcher_new,
)

H = 3600_000


class Clock:
    def __init__(self, now: int = 1_700_000_000_000):
        self.now = now

    def __call__(self) -> int:
        return self.now


def silence(*matchers, start: int, end: int, id: str = "") -> Silence:
    return Silence(id, tuple(matcher_new(*m) for m in matchers), start, end, "ops", "why")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_states_follow_the_clock_and_only_active_silences_mute(clock):
    silences = Silences(None, clock=clock)
    sid = silences.set(silence(("alertname", "=", "X"), start=clock.now + H, end=clock.now + 2 * H))
    labels = {"alertname": "X"}
    assert silences.get(sid).state(clock.now) == PENDING
    assert silences.is_silenced(labels, clock.now) == []
    clock.now += H
    assert silences.get(sid).state(clock.now) == ACTIVE
    assert silences.is_silenced(labels, clock.now) == [sid]
    assert silences.mutes(labels, clock.now)
    assert not silences.mutes({"alertname": "Y"}, clock.now)
    clock.now += H
    assert silences.get(sid).state(clock.now) == EXPIRED
    assert not silences.mutes(labels, clock.now)


@pytest.mark.parametrize(
    ("matcher", "silenced", "not_silenced"),
    [
        (("team", "=", "devops"), {"team": "devops"}, {"team": "dev"}),
        (("team", "!=", "devops"), {"team": "dev"}, {"team": "devops"}),
        (("team", "=~", "dev.*"), {"team": "devops"}, {"team": "xdevops"}),
        (("team", "!~", "dev.*"), {"team": "product"}, {"team": "devops"}),
    ],
)
def test_the_four_operators(clock, matcher, silenced, not_silenced):
    silences = Silences(None, clock=clock)
    silences.set(silence(("alertname", "=", "X"), matcher, start=clock.now, end=clock.now + H))
    assert silences.mutes({"alertname": "X", **silenced}, clock.now)
    assert not silences.mutes({"alertname": "X", **not_silenced}, clock.now)


def test_a_start_in_the_past_starts_now_and_updated_at_is_set(clock):
    silences = Silences(None, clock=clock)
    sid = silences.set(silence(("a", "=", "b"), start=clock.now - H, end=clock.now + H))
    stored = silences.get(sid)
    assert (stored.starts_at_ms, stored.updated_at_ms) == (clock.now, clock.now)


def test_refused_as_alertmanager_refuses(clock):
    silences = Silences(None, clock=clock)
    with pytest.raises(SilenceError, match="at least one matcher required"):
        silences.set(silence(start=clock.now, end=clock.now + H))
    with pytest.raises(SilenceError, match="must not match the empty string"):
        silences.set(
            silence(("a", "=~", ".*"), ("b", "!=", "x"), start=clock.now, end=clock.now + H)
        )
    with pytest.raises(SilenceError, match="end time must not be before start time"):
        silences.set(silence(("a", "=", "b"), start=clock.now + 2 * H, end=clock.now + H))
    with pytest.raises(SilenceError, match="invalid label name"):
        silences.set(silence(("a-b", "=", "b"), start=clock.now, end=clock.now + H))
    with pytest.raises(SilenceError, match="error parsing regexp"):
        matcher_new("a", "=~", "(")
    with pytest.raises(SilenceNotFound):
        silences.set(silence(("a", "=", "b"), start=clock.now, end=clock.now + H, id="nope"))


def test_an_active_silence_extended_keeps_its_id_but_new_matchers_replace_it(clock):
    silences = Silences(None, clock=clock)
    sid = silences.set(silence(("a", "=", "b"), start=clock.now, end=clock.now + H))
    clock.now += 1000
    start = silences.get(sid).starts_at_ms
    same = silences.set(silence(("a", "=", "b"), start=start, end=clock.now + 5 * H, id=sid))
    assert same == sid and silences.get(sid).ends_at_ms == clock.now + 5 * H
    clock.now += 1000
    other = silences.set(silence(("a", "=", "c"), start=start, end=clock.now + H, id=sid))
    assert other != sid
    old, new = silences.get(sid), silences.get(other)
    assert old.state(clock.now) == EXPIRED and old.ends_at_ms == clock.now
    assert new.state(clock.now) == ACTIVE and new.starts_at_ms == clock.now
    # A replacement that is refused leaves the silence it would replace alone.
    with pytest.raises(SilenceError):
        silences.set(silence(("a", "=", "d"), start=start, end=clock.now - 1, id=other))
    assert silences.get(other) == new


def test_expire_ends_active_and_pending_silences_and_is_idempotent(clock):
    silences = Silences(None, clock=clock)
    active = silences.set(silence(("a", "=", "b"), start=clock.now, end=clock.now + H))
    pending = silences.set(silence(("a", "=", "b"), start=clock.now + H, end=clock.now + 2 * H))
    clock.now += 1000
    silences.expire(active)
    silences.expire(pending)
    assert silences.get(active).ends_at_ms == clock.now
    assert (silences.get(pending).starts_at_ms, silences.get(pending).ends_at_ms) == (
        clock.now,
    ) * 2
    clock.now += 1000
    silences.expire(active)
    assert silences.get(active).ends_at_ms == clock.now - 1000
    with pytest.raises(SilenceNotFound):
        silences.expire("nope")


def test_query_filters_by_the_silences_own_matchers_and_orders_as_the_api(clock):
    silences = Silences(None, clock=clock)
    late = silences.set(silence(("a", "=", "b"), start=clock.now, end=clock.now + 2 * H))
    soon = silences.set(
        silence(("a", "=", "b"), ("c", "=~", "d.*"), start=clock.now, end=clock.now + H)
    )
    pending = silences.set(silence(("a", "=", "b"), start=clock.now + H, end=clock.now + 3 * H))
    gone = silences.set(silence(("a", "=", "b"), start=clock.now, end=clock.now + H))
    silences.expire(gone)
    assert [s.id for s in silences.query()] == [soon, late, pending, gone]
    assert [s.id for s in silences.query([matcher_new("c", "=~", "d.*")])] == [soon]
    assert silences.query([matcher_new("c", "=", "d.*")]) == []


def test_silences_persist_and_expired_ones_are_pruned_after_the_retention(tmp_path, clock):
    store = StateStore(tmp_path / "state.sqlite3")
    silences = Silences(store, clock=clock, retention_ms=10 * H)
    keep = silences.set(silence(("a", "=~", "b|c"), start=clock.now, end=clock.now + H))
    old = silences.set(silence(("a", "=", "b"), start=clock.now, end=clock.now + H))
    silences.expire(old)
    store.close()

    store = StateStore(tmp_path / "state.sqlite3")
    reopened = Silences(store, clock=clock, retention_ms=10 * H)
    assert reopened.get(keep) == silences.get(keep)
    assert reopened.mutes({"a": "c"}, clock.now)
    clock.now += 10 * H + 1
    assert reopened.gc() == 1
    assert reopened.get(old) is None and reopened.get(keep) is not None
    store.close()
    assert {s.id for s in StateStore(tmp_path / "state.sqlite3").silences_load()} == {keep}


@pytest.mark.parametrize("persisted", [False, True], ids=["memory", "store"])
def test_every_change_is_in_the_audit_trail_with_who_and_when(clock, tmp_path, persisted):
    from dataclasses import replace

    def open_silences() -> Silences:
        store = StateStore(tmp_path / "state.sqlite3") if persisted else None
        return Silences(store, clock=clock)

    silences = open_silences()
    m = ("alertname", "=", "X")
    sid = silences.set(replace(silence(m, start=clock.now, end=clock.now + H), created_by="ana"))
    clock.now += 1000
    # The same matchers, a later end: updated in place, by whoever changed it.
    kept = replace(silences.get(sid), ends_at_ms=clock.now + 2 * H, created_by="bo")
    assert silences.set(kept) == sid
    clock.now += 1000
    # Other matchers: the old one is expired (replaced) and a new one created.
    changed = replace(kept, matchers=(matcher_new("alertname", "=", "Y"),), created_by="cy")
    new_id = silences.set(changed)
    clock.now += 1000
    silences.expire(new_id, actor="di")
    silences.expire(new_id, actor="ed")  # already expired: nothing happens, nothing recorded
    if persisted:
        silences = open_silences()  # the trail survives a restart
    events = [(e.silence_id, e.action, e.actor, e.at_ms) for e in silences.events()]
    t0 = clock.now - 3000
    assert events == [
        (sid, "created", "ana", t0),
        (sid, "updated", "bo", t0 + 1000),
        (sid, "replaced", "cy", t0 + 2000),
        (new_id, "created", "cy", t0 + 2000),
        (new_id, "expired", "di", t0 + 3000),
    ]
    assert f"by {new_id}" in silences.events(sid)[-1].detail
    assert 'alertname="Y"' in silences.events(new_id)[0].detail
    # Pruned with its silence.
    clock.now += 200 * H
    silences.gc()
    assert silences.events() == []
