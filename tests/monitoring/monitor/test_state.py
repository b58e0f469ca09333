"""The monitor's own state file: rows follow the engine's alerts, transitions are append-only,
ordered, always legal, and survive a kill; a damaged file is moved aside, never a crash."""

from __future__ import annotations

import logging
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import OUTAGE_TOLERANCE_MS, Monitor
from monitoring.monitor.state import (
    LEGAL_TRANSITIONS,
    MIGRATIONS,
    RECEIVED_FILE,
    RECEIVED_GROUP,
    StateStore,
)
from monitoring.notify.notification import NotifiedAlert
from monitoring.rules.alerting import Alert, fingerprint
from monitoring.tsdb.store import labels_from
from tests.wait import wait_for

pytestmark = pytest.mark.spread  # independent tests: xdist may share them out

T0 = 1_767_268_800_000  # 2026-01-01T12:00:00Z, in ms
MINUTE = 60_000
CPU = labels_from({"alertname": "HighCpuUsage", "severity": "warning", "instance": "web1"})
ROOT = Path(__file__).resolve().parents[3]


def _alert(state: str, *, labels=CPU, at=T0, fired=None, resolved=None, value=91.5) -> Alert:
    return Alert(labels, {"summary": "High CPU usage detected"}, state, value, at, fired, resolved)


@pytest.fixture
def store(tmp_path):
    state = StateStore(tmp_path / "monitor" / "state.sqlite3")
    yield state
    state.close()


def _persist(store: StateStore, *alerts: Alert, at: int, group: str = "system"):
    return store.alerts_persist(
        group=group, rule_file="alert_rules.yml", alerts=alerts, evaluated_at_ms=at
    )


def _rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_a_full_lifecycle_records_each_transition_once(store):
    (t1,) = _persist(store, _alert("pending"), at=T0)
    assert (t1.from_state, t1.to_state) == ("inactive", "pending")
    assert _persist(store, _alert("pending"), at=T0 + MINUTE) == []
    fired_at = T0 + 5 * MINUTE
    (t2,) = _persist(store, _alert("firing", fired=fired_at), at=fired_at)
    assert (t2.from_state, t2.to_state) == ("pending", "firing") and t2.fired_at_ms == fired_at
    # The engine keeps a resolved alert (inactive, resolved_at set) for a while: one transition.
    resolved_at = T0 + 9 * MINUTE
    resolved = _alert("inactive", fired=fired_at, resolved=resolved_at, value=12.0)
    (t3,) = _persist(store, resolved, at=resolved_at)
    assert t3.is_resolution and t3.resolved_at_ms == resolved_at
    assert _persist(store, resolved, at=resolved_at + MINUTE) == []
    assert _persist(store, at=resolved_at + 20 * MINUTE) == []
    assert [t.id for t in store.alert_transitions_after(after_id=0)] == [t1.id, t2.id, t3.id]
    assert t1.id < t2.id < t3.id
    ((stored_fingerprint, state, fired, resolved_ms, value),) = _rows(
        store.path,
        "SELECT fingerprint, state, fired_at_ms, resolved_at_ms, last_value FROM alert",
    )
    # One fingerprint: the rules layer's, the engine's alert's.
    assert stored_fingerprint == fingerprint(CPU) == resolved.fingerprint == t3.fingerprint
    assert (state, fired, resolved_ms, value) == ("inactive", fired_at, resolved_at, 12.0)


def test_an_alert_missing_from_the_result_is_resolved_by_the_monitor(store):
    _persist(store, _alert("firing", fired=T0), at=T0)
    later = T0 + 3 * MINUTE
    (transition,) = _persist(store, at=later)
    assert transition.is_resolution and transition.resolved_at_ms == later
    assert store.alerts_active() == []


def test_a_pending_alert_that_goes_away_never_resolves(store):
    _persist(store, _alert("pending"), at=T0)
    (transition,) = _persist(store, at=T0 + MINUTE)
    assert (transition.from_state, transition.to_state) == ("pending", "inactive")
    assert not transition.is_resolution and transition.resolved_at_ms is None


def test_an_alert_that_comes_back_reuses_its_row_and_starts_a_new_episode(store):
    _persist(store, _alert("firing", fired=T0), at=T0)
    _persist(store, at=T0 + MINUTE)
    again = T0 + 2 * MINUTE
    (transition,) = _persist(store, _alert("pending", at=again), at=again)
    assert (transition.from_state, transition.to_state) == ("inactive", "pending")
    (row,) = store.alerts_active()
    assert row.state == "pending" and row.active_at_ms == again and row.resolved_at_ms is None
    assert _rows(store.path, "SELECT count(*) FROM alert") == [(1,)]


def test_a_firing_alert_that_started_over_is_resolved_first_never_firing_to_pending(store):
    """State older than the outage tolerance is not restored: the engine starts the alert over
    as pending while the file still says firing. The old episode ends (a resolution the
    notifier can send), then the new one begins."""
    _persist(store, _alert("firing", fired=T0), at=T0)
    restart = T0 + 2 * 3600_000
    ended, began = _persist(store, _alert("pending", at=restart), at=restart)
    assert ended.is_resolution and ended.resolved_at_ms == restart and ended.active_at_ms == T0
    assert (began.from_state, began.to_state, began.active_at_ms) == (
        "inactive",
        "pending",
        restart,
    )
    # Firing again at once with another activeAt (`for: 0`): also a new episode.
    later = restart + MINUTE
    _persist(store, _alert("firing", at=restart, fired=later), at=later)
    ended, began = _persist(store, _alert("firing", at=later, fired=later), at=later + MINUTE)
    assert ended.is_resolution and (began.from_state, began.to_state) == ("inactive", "firing")


def test_groups_do_not_resolve_each_others_alerts(store):
    disk = labels_from({"alertname": "HighDiskUsage", "severity": "critical"})
    _persist(store, _alert("firing", fired=T0), at=T0, group="system")
    _persist(store, _alert("firing", labels=disk, fired=T0), at=T0, group="disk")
    assert _persist(store, _alert("firing", fired=T0), at=T0 + MINUTE, group="system") == []
    assert {a.alertname for a in store.alerts_active()} == {"HighCpuUsage", "HighDiskUsage"}
    assert [a.alertname for a in store.alerts_active(group="disk")] == ["HighDiskUsage"]


def test_nan_values_are_stored_as_null_and_infinity_is_kept(store):
    _persist(store, _alert("pending", value=float("nan")), at=T0)
    assert store.alerts_active()[0].last_value is None
    _persist(store, _alert("pending", value=float("inf")), at=T0 + MINUTE)
    assert store.alerts_active()[0].last_value == float("inf")


def test_alerts_of_removed_rules_are_retired(store):
    load = labels_from({"alertname": "HighLoad", "severity": "warning"})
    _persist(store, _alert("firing", fired=T0), _alert("pending", labels=load), at=T0)
    (transition,) = store.alerts_retire(keep={("system", "HighCpuUsage")}, evaluated_at_ms=T0 + 1)
    assert transition.alertname == "HighLoad" and transition.to_state == "inactive"
    assert not transition.is_resolution  # it was pending: nothing had been announced
    assert [a.alertname for a in store.alerts_active()] == ["HighCpuUsage"]


def test_a_consumer_reads_each_transition_once_in_order(store):
    _persist(store, _alert("pending"), at=T0)
    _persist(store, _alert("firing", fired=T0 + 5 * MINUTE), at=T0 + 5 * MINUTE)
    first = store.alert_transitions_after(after_id=0, limit=1)
    assert [t.to_state for t in first] == ["pending"]
    rest = store.alert_transitions_after(after_id=first[-1].id)
    assert [t.to_state for t in rest] == ["firing"]
    assert rest[0].labels == dict(CPU) and rest[0].annotations["summary"]
    _persist(store, at=T0 + 9 * MINUTE)
    (resolution,) = store.alert_transitions_after(after_id=rest[-1].id)
    assert resolution.is_resolution
    assert store.alert_transitions_after(after_id=resolution.id) == []


def test_transition_ids_increase_in_commit_order_with_concurrent_writers(store):
    """Every group loop writes from its own thread: ids must still follow commit order, so a
    consumer reading `id > last` never skips a row committed later with a smaller id."""

    def group_loop(n: int) -> None:
        labels = labels_from({"alertname": f"A{n}"})
        for step in range(20):
            state = "pending" if step % 2 == 0 else None
            alerts = [_alert(state, labels=labels, at=T0 + step)] if state else []
            _persist(store, *alerts, at=T0 + step, group=f"g{n}")

    threads = [threading.Thread(target=group_loop, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [row[0] for row in _rows(store.path, "SELECT id FROM alert_transition ORDER BY rowid")]
    assert len(ids) == 4 * 20 and ids == sorted(ids) == list(range(ids[0], ids[0] + 80))


def test_the_schema_refuses_an_impossible_transition(store):
    _persist(store, _alert("firing", fired=T0), at=T0)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO alert_transition (fingerprint, alertname, from_state, to_state, labels,"
            " annotations, at_ms, recorded_at_ms) VALUES (?, 'x', 'firing', 'pending', '{}',"
            " '{}', 0, 0)",
            (fingerprint(CPU),),
        )


def test_the_file_is_versioned_wal_and_migrated_once(store, tmp_path):
    assert _rows(store.path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert _rows(store.path, "PRAGMA journal_mode") == [("wal",)]
    _persist(store, _alert("pending"), at=T0)
    again = StateStore(store.path)  # a second open finds the current version: no migration
    assert [a.fingerprint for a in again.alerts_active()] == [fingerprint(CPU)]
    again.close()


KILLED_WRITER = """
import os, sys
from monitoring.monitor.state import StateStore
from monitoring.rules.alerting import Alert
from monitoring.tsdb.store import labels_from
store = StateStore(sys.argv[1])
for n in range(50):
    labels = labels_from({"alertname": "Killed", "n": str(n)})
    alert = Alert(labels, {}, "firing", 1.0, 1000, 2000)
    store.alerts_persist(group="g", rule_file="f", alerts=[alert], evaluated_at_ms=2000 + n)
print("committed", flush=True)
os.kill(os.getpid(), 9)
"""


def test_several_openers_of_a_new_file_at_once_all_get_the_migrated_file(tmp_path):
    """The monitor and the app's workers (Alertmanager's webhooks) may create the file at the
    same moment: an opener that lost the race to a migration step goes on, never fails."""
    for attempt in range(5):
        path = tmp_path / f"state-{attempt}.sqlite3"
        start, failures = threading.Barrier(6), []

        def open_it(path=path, start=start, failures=failures) -> None:
            start.wait()
            try:
                StateStore(path).close()
            except sqlite3.Error as exc:
                failures.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_file_reopened_after_a_kill_keeps_everything_committed(tmp_path):
    path = tmp_path / "state.sqlite3"
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -9 and result.stdout == "committed\n", result.stderr
    store = StateStore(path)
    try:
        # Each write holds one alert of the group, so it also resolves the one before it.
        active = store.alerts_active()
        assert [a.labels["n"] for a in active] == ["49"]
        transitions = store.alert_transitions_after(after_id=0, limit=1000)
        assert len(transitions) == 50 + 49
    finally:
        store.close()


def test_a_corrupt_state_file_is_moved_aside_and_a_fresh_one_started(tmp_path, caplog):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not an SQLite database, whatever wrote it" * 100)
    with caplog.at_level(logging.ERROR, logger="monitoring.monitor.state"):
        store = StateStore(path)
    try:
        (aside,) = tmp_path.glob("state.sqlite3.corrupt-*")
        assert aside.read_bytes().startswith(b"this is not an SQLite database")
        assert f"monitor state file {path} is unreadable" in caplog.text
        assert str(aside) in caplog.text
        assert store.alerts_active() == [] and _persist(store, _alert("pending"), at=T0)
    finally:
        store.close()


def test_a_truncated_state_file_is_moved_aside(tmp_path, caplog):
    path = tmp_path / "state.sqlite3"
    store = StateStore(path)
    for n in range(200):  # enough rows for several pages
        labels = labels_from({"alertname": "Many", "n": str(n), "pad": "x" * 200})
        _persist(store, _alert("pending", labels=labels), at=T0)
    store.close()  # checkpoints the WAL into the main file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.ERROR, logger="monitoring.monitor.state"):
        fresh = StateStore(path)
    try:
        assert list(tmp_path.glob("state.sqlite3.corrupt-*")) and "unreadable" in caplog.text
        assert fresh.alerts_active() == []
    finally:
        fresh.close()


def test_a_locked_file_is_not_damage_and_is_not_moved_aside(tmp_path):
    """Another process holding the file's lock is refused with SQLite's error; moving the file
    aside would throw its good state away."""
    path = tmp_path / "state.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            StateStore(path, busy_timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert _rows(path, "SELECT name FROM sqlite_master") == [("other",)]


def test_a_file_from_a_newer_monitor_is_moved_aside_not_misread(tmp_path, caplog):
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with caplog.at_level(logging.ERROR, logger="monitoring.monitor.state"):
        store = StateStore(path)
    store.close()
    assert "newer than this monitor's" in caplog.text
    assert _rows(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]


# -- the monitor's use of the store -------------------------------------------------------------
RULES = """\
groups:
  - name: system
    rules:
      - alert: HighCpuUsage
        expr: cpu_usage_percent > 85
        for: 5m
      - alert: CpuPinned
        expr: cpu_usage_percent > 95
"""


@pytest.fixture
def monitor_at(tmp_path):
    """A Monitor (not started) with alerting rules, whose clock the test sets."""
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text("rule_files: [rules.yml]\n")
    settings = settings_from_env({"MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3")})
    built: list[Monitor] = []

    def build(now_ms: int) -> Monitor:
        clock = [now_ms]
        monitor = Monitor(
            config_path=tmp_path / "prometheus.yml", settings=settings, clock=lambda: clock[0]
        )
        monitor.now = clock  # the test moves it
        built.append(monitor)
        return monitor

    yield build
    for monitor in built:
        monitor.stop()


def test_restore_brings_back_recent_state_only(monitor_at, tmp_path):
    rule_file = str(tmp_path / "rules.yml")
    recent = labels_from({**dict(CPU), "instance": "web1"})
    stale = labels_from({**dict(CPU), "instance": "web2"})
    now = T0 + 3 * 3600_000
    at = now - MINUTE
    store = StateStore(tmp_path / "state.sqlite3")
    store.alerts_persist(
        group="system",
        rule_file=rule_file,
        alerts=[
            _alert("pending", labels=recent, at=at - MINUTE),
            _alert("firing", labels=stale, at=at - MINUTE, fired=at),
        ],
        evaluated_at_ms=at,
    )
    store.close()
    # web2's state was last written before an outage longer than the tolerance.
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.execute(
            "UPDATE alert SET last_evaluated_at_ms = ? WHERE fingerprint = ?",
            (now - OUTAGE_TOLERANCE_MS - 1, fingerprint(stale)),
        )
    monitor = monitor_at(now)
    assert monitor.restore() == 1
    (alert,) = monitor.groups[0].alerts()
    assert dict(alert.labels)["instance"] == "web1" and alert.state == "pending"
    assert alert.active_at_ms == at - MINUTE  # `for` keeps counting from the original start


def _legal_history(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Every fingerprint's transitions, checked to chain: each starts where the last ended."""
    chains: dict[str, list[tuple[str, str]]] = {}
    for fp, from_state, to_state in _rows(
        path, "SELECT fingerprint, from_state, to_state FROM alert_transition ORDER BY id"
    ):
        chain = chains.setdefault(fp, [])
        assert (from_state, to_state) in LEGAL_TRANSITIONS
        assert from_state == (chain[-1][1] if chain else "inactive"), (fp, chain, from_state)
        chain.append((from_state, to_state))
    return chains


@pytest.mark.parametrize("seed", range(4))
def test_no_evaluation_sequence_records_an_impossible_transition(monitor_at, tmp_path, seed):
    """Random CPU values, clock jumps (some longer than the outage tolerance) and restarts of
    the monitor: every recorded transition is legal and chains from the previous one, so
    firing -> pending can never appear, and the file's state is the engine's after each step."""
    rng = random.Random(seed)
    now = T0
    monitor = monitor_at(now)
    monitor.restore()
    (group,) = monitor.groups
    for _ in range(200):
        now += rng.choice([15_000, 60_000, 4 * MINUTE, 6 * MINUTE, 20 * MINUTE, 2 * 3600_000])
        if rng.random() < 0.1:
            monitor.stop()
            monitor = monitor_at(now)
            monitor.restore()
            (group,) = monitor.groups
        monitor.now[0] = now
        value = rng.choice([50.0, 90.0, 99.0])
        for instance in ("web1", "web2"):
            if rng.random() < 0.8:
                monitor.store.append_scrape(
                    f"scrape:{instance}",
                    [(labels_from({"__name__": "cpu_usage_percent", "instance": instance}), value)],
                    now,
                )
        monitor.evaluate(group, now)
        live = {a.fingerprint: a.state for a in group.active_alerts()}
        stored = {a.fingerprint: a.state for a in monitor.state.alerts_active()}
        assert stored == live
    chains = _legal_history(tmp_path / "state.sqlite3")
    seen = {step for chain in chains.values() for step in chain}
    assert ("pending", "firing") in seen and ("firing", "inactive") in seen


def test_old_transitions_are_pruned_but_a_live_alerts_last_one_is_kept(store):
    def alert(name: str, state: str, at: int, **times) -> Alert:
        return _alert(state, labels=labels_from({"alertname": name}), at=at, **times)

    _persist(store, alert("A", "pending", T0), at=T0, group="a")  # 1
    _persist(store, alert("A", "firing", T0, fired=T0 + 5 * MINUTE), at=T0 + 5 * MINUTE, group="a")
    _persist(store, alert("D", "pending", T0 + 2 * MINUTE), at=T0 + 2 * MINUTE, group="d")  # 3
    _persist(store, alert("B", "pending", T0 + MINUTE), at=T0 + MINUTE, group="b")  # 4
    fired = T0 + 6 * MINUTE
    _persist(store, alert("B", "firing", T0 + MINUTE, fired=fired), at=fired, group="b")  # 5
    _persist(store, at=T0 + 20 * MINUTE, group="b")  # 6: resolved, after the cut-off
    _persist(store, alert("G", "pending", T0 + 3 * MINUTE), at=T0 + 3 * MINUTE, group="g")  # 7
    _persist(store, at=T0 + 4 * MINUTE, group="g")  # 8: pending, then gone; the newest id
    before = [t.id for t in store.alert_transitions_after(after_id=0)]
    assert store.alert_transitions_prune(before_ms=T0 + 10 * MINUTE) == 5
    kept = store.alert_transitions_after(after_id=0)
    # A (firing) and D (pending) keep their last transition however old; B's resolution is new.
    assert [(t.alertname, t.to_state) for t in kept] == [
        ("A", "firing"),
        ("D", "pending"),
        ("B", "inactive"),
    ]
    assert [t.id for t in kept] == [before[1], before[2], before[5]]
    assert store.alert_transitions_prune(before_ms=T0 + 10 * MINUTE) == 0
    # Ids keep increasing in commit order: the pruned newest id is never handed out again.
    (resolution,) = _persist(store, at=T0 + 30 * MINUTE, group="a")
    assert resolution.is_resolution and resolution.id > max(before)
    assert store.alert_transitions_after(after_id=max(before)) == [resolution]


def test_the_monitors_gc_prunes_transitions_past_the_state_retention(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text("rule_files: [rules.yml]\n")
    settings = settings_from_env(
        {"MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3"), "MONITOR_STATE_RETENTION": "2d"}
    )
    now = T0 + 3 * 86400_000
    monitor = Monitor(config_path=tmp_path / "prometheus.yml", settings=settings, clock=lambda: now)
    try:
        old, recent = now - 2 * 86400_000 - 2 * MINUTE, now - 2 * 86400_000 + MINUTE
        _persist(monitor.state, _alert("pending", at=old), at=old)
        _persist(monitor.state, at=old + MINUTE)
        _persist(monitor.state, _alert("pending", at=recent), at=recent)
        monitor.gc(now)
        kept = monitor.state.alert_transitions_after(after_id=0)
        assert [(t.from_state, t.to_state, t.at_ms) for t in kept] == [
            ("inactive", "pending", recent)
        ]
    finally:
        monitor.stop()


# -- alerts received from real Alertmanager (the app's receiver, at scale) ---------------------
def _received(status: str, *, labels=CPU, start=T0, end=None) -> NotifiedAlert:
    return NotifiedAlert(
        labels=dict(labels),
        annotations={"summary": "High CPU usage detected"},
        starts_at_ms=start,
        ends_at_ms=end if status == "resolved" else None,
        status=status,
    )


def _steps(transitions) -> list[tuple[str, str, int]]:
    return [(t.from_state, t.to_state, t.at_ms) for t in transitions]


def test_a_received_episode_is_one_firing_and_one_resolution_however_often_it_is_sent(store):
    end = T0 + 9 * MINUTE
    (fired,) = store.alerts_received([_received("firing")], at_ms=T0 + 1)
    assert _steps([fired]) == [("inactive", "firing", T0)]
    assert fired.fingerprint == fingerprint(CPU) and fired.fired_at_ms == T0
    # Repeats (repeat_interval, a second receiver, a retry) record nothing.
    assert store.alerts_received([_received("firing")] * 2, at_ms=T0 + 4 * MINUTE) == []
    (row,) = store.alerts_active()
    assert (row.rule_group, row.rule_file, row.state) == (RECEIVED_GROUP, RECEIVED_FILE, "firing")
    assert row.last_evaluated_at_ms == T0 + 4 * MINUTE  # when Alertmanager last sent it
    (resolution,) = store.alerts_received([_received("resolved", end=end)], at_ms=end + 1)
    assert _steps([resolution]) == [("firing", "inactive", end)]
    assert resolution.is_resolution and resolution.resolved_at_ms == end
    # A repeated resolution, or a firing message of the ended episode arriving late: nothing.
    late = [_received("resolved", end=end), _received("firing")]
    assert store.alerts_received(late, at_ms=end + MINUTE) == []
    assert store.alerts_active() == []
    assert _legal_history(store.path) == {
        fingerprint(CPU): [("inactive", "firing"), ("firing", "inactive")]
    }


def test_a_received_new_episode_ends_the_one_whose_resolution_was_lost(store):
    later = T0 + 30 * MINUTE
    store.alerts_received([_received("firing")], at_ms=T0)
    transitions = store.alerts_received([_received("firing", start=later)], at_ms=later)
    assert _steps(transitions) == [("firing", "inactive", later), ("inactive", "firing", later)]
    # The old episode's resolution arriving now is about an episode before the stored one.
    old = _received("resolved", end=T0 + 9 * MINUTE)
    assert store.alerts_received([old], at_ms=later + 1) == []
    assert store.alerts_active()[0].active_at_ms == later
    _legal_history(store.path)


def test_a_resolution_of_an_episode_never_seen_firing_records_both(store):
    end = T0 + 9 * MINUTE
    transitions = store.alerts_received([_received("resolved", end=end)], at_ms=end)
    assert _steps(transitions) == [("inactive", "firing", T0), ("firing", "inactive", end)]


def test_a_received_alert_the_monitors_rule_records_live_is_left_to_the_monitor(store):
    _persist(store, _alert("pending"), at=T0)
    assert store.alerts_received([_received("firing")], at_ms=T0 + MINUTE) == []
    assert store.alerts_active()[0].rule_group == "system"
    _persist(store, at=T0 + 2 * MINUTE)  # the monitor's episode ends
    (fired,) = store.alerts_received([_received("firing", start=T0 + 3 * MINUTE)], at_ms=T0)
    assert fired.to_state == "firing" and store.alerts_active()[0].rule_group == RECEIVED_GROUP


def test_retirement_leaves_received_alerts_alone(store):
    store.alerts_received([_received("firing")], at_ms=T0)
    assert store.alerts_retire(keep=set(), evaluated_at_ms=T0 + MINUTE) == []
    assert [a.state for a in store.alerts_active()] == ["firing"]


def test_a_running_monitor_leaves_received_alerts_alone(monitor_at, tmp_path):
    """Restore, retirement (at start and reload) and the group's evaluations are about the
    monitor's rules: an alert received from Alertmanager, even one named like a rule's, stays
    firing until Alertmanager resolves it."""
    now = T0 + 3 * 3600_000
    store = StateStore(tmp_path / "state.sqlite3")
    named_like_a_rule = labels_from({**dict(CPU), "instance": "web9"})
    other = labels_from({"alertname": "DatabaseErrors", "severity": "critical"})
    store.alerts_received(
        [_received("firing", labels=named_like_a_rule), _received("firing", labels=other)],
        at_ms=T0,
    )
    store.close()
    monitor = monitor_at(now)
    monitor.start()
    (group,) = monitor.groups
    wait_for(lambda: group.last_eval_ms, timeout=60, what="an evaluation of the group")
    assert monitor.reload() == []
    monitor.gc(now)
    assert {a.alertname: a.state for a in monitor.state.alerts_active()} == {
        "HighCpuUsage": "firing",
        "DatabaseErrors": "firing",
    }
    assert all(t.to_state == "firing" for t in monitor.state.alert_transitions_after(after_id=0))
