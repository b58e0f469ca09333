"""The durable outbox: a row before any delivery, retries with backoff against a real local
server, failure past the deadline raising NotificationChannelDown, and a SIGKILL mid-delivery
that neither loses nor duplicates (but for the one repeat with the same idempotency key)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitoring.monitor.state import StateStore
from monitoring.notify.outbox import Backoff
from monitoring.notify.pipeline import CHANNEL_DOWN, Notifier
from tests.monitoring.notify.pipeline_helpers import CONFIG, Clock, alert, config, resolved
from tests.wait import wait_for

REPO = Path(__file__).resolve().parents[3]


class Receiver(ThreadingHTTPServer):
    """Records every POST (path, JSON body); answers `statuses` in turn (the last repeats);
    while `hold` is clear, keeps the request open after recording it."""

    daemon_threads = True
    # A burst of notifications opens many connections at once: Python's default listen backlog
    # of 5 drops the rest's SYNs, which the kernel resends after 1, 3, 7… s (a burst of 40 took
    # over 30 s on a loaded machine).
    request_queue_size = 1024

    def __init__(self, statuses=(200,)) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, dict, str]] = []  # (path, body, Idempotency-Key header)
        self.statuses = list(statuses)
        self.hold = threading.Event()
        self.hold.set()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.posts]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posts.append((self.path, body, self.headers.get("Idempotency-Key", "")))
        self.server.hold.wait(60)
        status = (
            self.server.statuses.pop(0)
            if len(self.server.statuses) > 1
            else self.server.statuses[0]
        )
        try:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the sender was killed while the request was held

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.sqlite3")
    yield s
    s.close()


def notifier(store, clock, team, pager, **kw) -> Notifier:
    return Notifier(
        config(team.url, pager.url),
        state=store,
        clock=clock,
        env={},
        backoff=Backoff(rng=random.Random(1)),
        **kw,
    )


def test_a_row_exists_before_delivery_and_retries_back_off_until_the_server_answers(store):
    clock = Clock()
    team, pager = Receiver(), Receiver(statuses=(500, 500, 200))
    n = notifier(store, clock, team, pager)
    a = alert(severity="critical", starts_at_ms=clock())
    n.put([a])
    assert n.flush_due() == 1  # the critical route: group_wait 0s
    rows = {r.integration: r for r in store.outbox_rows()}
    assert {r.status for r in rows.values()} == {"pending"} and pager.posts == []

    assert n.deliverer.deliver_due() == 2
    first = {r.integration: r for r in store.outbox_rows()}
    # webhook/0 and webhook/1 both got a 500: retried after 0.5–1.5 s (attempt 1)
    for row in first.values():
        assert row.status == "pending" and row.attempts == 1 and row.last_error
        assert clock() + 500 <= row.next_attempt_ms <= clock() + 1500
    assert n.deliverer.deliver_due() == 0  # nothing is due before its backoff
    clock.advance(1.5)
    n.deliverer.deliver_due()  # the server's second 500 for one row, its 200 for the other
    clock.advance(3)
    n.deliverer.deliver_due()
    done = store.outbox_rows()
    assert [r.status for r in done] == ["delivered", "delivered"]
    keys = {}
    for path, body, header in pager.posts:
        assert body["idempotencyKey"] == header
        keys.setdefault(path, set()).add(header)
    assert all(len(k) == 1 for k in keys.values())  # retries carry the same key
    assert len(pager.posts) == 4 and n.metrics.notifications == {"webhook": 2}
    assert n.metrics.failed == {}
    assert n.metrics.latency["webhook"][2] == 4  # every attempt observed


def test_past_the_deadline_the_row_fails_and_the_other_receivers_are_told(store):
    clock = Clock()
    team, pager = Receiver(), Receiver(statuses=(503,))
    n = notifier(store, clock, team, pager, deadline_ms=60_000)
    n.put([alert(severity="critical", starts_at_ms=clock())])
    n.flush_due()
    while any(r.status == "pending" for r in store.outbox_rows()):
        n.deliverer.deliver_due()
        clock.advance(5)
    assert {r.status for r in store.outbox_rows()} == {"failed"}
    assert n.metrics.failed == {"webhook": 2}
    # NotificationChannelDown (critical) goes to the team receiver (group_wait 30s, with the
    # critical alert itself), never to the failing pager.
    clock.advance(30)
    n.flush_due()
    n.deliverer.deliver_due()
    (post,) = [b for _, b, _ in team.posts if b["commonLabels"]["alertname"] == CHANNEL_DOWN]
    # one per failing integration of the pager
    assert sorted(a["labels"]["config"] for a in post["alerts"]) == ["webhook/0", "webhook/1"]
    assert {a["labels"]["receiver"] for a in post["alerts"]} == {"pager"}
    assert all(path.startswith("/pager") for path in pager.paths())


def test_the_resolution_goes_to_the_receivers_that_were_told_it_fired(store):
    clock = Clock()
    team, pager = Receiver(), Receiver()
    n = notifier(store, clock, team, pager)
    warning = alert(starts_at_ms=clock())
    critical = alert(name="Down", severity="critical", starts_at_ms=clock())
    n.put([warning, critical])
    n.flush_due()
    n.deliverer.deliver_due()
    assert sorted(pager.paths()) == ["/pager", "/pager-no-resolved"]
    assert team.posts == []  # group_wait 30s
    clock.advance(30)
    n.flush_due()
    n.deliverer.deliver_due()
    assert len(team.posts) == 2  # one group per alertname
    clock.advance(10)
    n.put([resolved(critical, clock())])
    clock.advance(300)  # the group_interval of both routes
    n.put([warning])  # still firing (an alert not handed again resolves after 5m)
    n.flush_due()
    n.deliverer.deliver_due()
    # the pager's send_resolved integration and the team get the resolution; the other not.
    assert sorted(pager.paths()) == ["/pager", "/pager", "/pager-no-resolved"]
    told = [b for p, b, _ in team.posts[2:]]
    assert [(b["status"], b["alerts"][0]["labels"]["alertname"]) for b in told] == [
        ("resolved", "Down")
    ]


def test_a_running_notifier_delivers_within_its_threads(store):
    team, pager = Receiver(), Receiver()
    clock = lambda: round(time.time() * 1000)  # noqa: E731
    n = notifier(store, clock, team, pager)
    n.start()
    try:
        a = alert(severity="critical", starts_at_ms=clock())
        n.put([a])
        wait_for(lambda: len(pager.posts) == 2, what="the firing notification")
        wait_for(lambda: {r.status for r in store.outbox_rows()} == {"delivered"})
    finally:
        n.stop()


def test_sigkill_between_send_and_record_repeats_once_with_the_same_key(tmp_path):
    team, pager = Receiver(), Receiver()
    pager.hold.clear()  # the pager's requests stay open: the process is killed meanwhile
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(CONFIG.replace("{team_url}", team.url).replace("{pager_url}", pager.url))
    state_path = tmp_path / "state.sqlite3"
    command = [sys.executable, "-m", "tests.monitoring.notify.outbox_process"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*flags):
        process = subprocess.Popen(
            [*command, str(state_path), str(config_path), *flags],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "ready"
        return process

    first = run("--put")
    try:
        wait_for(lambda: len(pager.posts) == 2, what="both pager requests in flight")
        # The team's notification is recorded as delivered before the kill, so that only the
        # pager's (in flight) are repeated; killed between its send and its record, the team's
        # would be repeated too, with the same key, which is the case the pager shows.
        observer = StateStore(state_path)
        try:
            wait_for(
                lambda: any(
                    r.receiver == "team" and r.status == "delivered" for r in observer.outbox_rows()
                ),
                what="the team's notification recorded",
            )
        finally:
            observer.close()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    pager.hold.set()
    # The monitor hands the same alert again after its restart: the log says it was told,
    # so no new notification is made; the pending rows are delivered.
    second = run("--put")
    try:
        store = StateStore(state_path)
        wait_for(
            lambda: {r.status for r in store.outbox_rows()} == {"delivered"},
            what="the pending rows delivered after the restart",
        )
        rows = store.outbox_rows()
        store.close()
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(30)
    # the pager's two integrations, and the team (its alert started long ago: no group_wait)
    assert sorted((r.receiver, r.integration) for r in rows) == [
        ("pager", "webhook/0"),
        ("pager", "webhook/1"),
        ("team", "webhook/0"),
    ]
    assert len(team.posts) == 1
    by_path: dict[str, list[str]] = {}
    for path, _, key in pager.posts:
        by_path.setdefault(path, []).append(key)
    # Each notification twice at most, and then with the same key.
    assert sorted(by_path) == ["/pager", "/pager-no-resolved"]
    for keys in by_path.values():
        assert len(keys) == 2 and len(set(keys)) == 1
    assert {r.idempotency_key for r in rows if r.receiver == "pager"} == {
        k for keys in by_path.values() for k in keys
    }


def test_channel_down_resolves_at_the_next_delivery_to_that_integration(store):
    clock = Clock()
    team, pager = Receiver(), Receiver(statuses=(400,))  # permanent: fails at once
    n = notifier(store, clock, team, pager)
    n.put([alert(severity="critical", starts_at_ms=clock())])
    n.flush_due()
    n.deliverer.deliver_due()
    assert n.alert_counts()["active"] == 3  # the alert, one ChannelDown per pager integration
    clock.advance(30)  # the team's group_wait: it is told ChannelDown fires
    n.flush_due()
    n.deliverer.deliver_due()
    pager.statuses = [200]
    clock.advance(1)
    n.put([alert(name="Other", severity="critical", starts_at_ms=clock())])
    n.flush_due()
    n.deliverer.deliver_due()
    # Both pager integrations delivered again: their ChannelDown alerts are resolved.
    assert n.alert_counts() == {"active": 2, "suppressed": 0}  # the two critical alerts only
    clock.advance(300)  # the team's group_wait/interval: it hears of ChannelDown's resolution
    n.put([alert(severity="critical"), alert(name="Other", severity="critical")])
    n.flush_due()
    n.deliverer.deliver_due()
    told = [b for _, b, _ in team.posts if b["commonLabels"].get("alertname") == CHANNEL_DOWN]
    assert [b["status"] for b in told] == ["firing", "resolved"]


def test_channel_down_raised_before_a_restart_resolves_after_it(store):
    """The notifier holds NotificationChannelDown in memory only; after a restart the log
    still says who was told it fires, and the next delivery to the channel resolves it there
    (found by the drill tests/monitoring/notify/test_drills.py: it used to stay firing)."""
    clock = Clock()
    team, pager = Receiver(), Receiver(statuses=(400,))  # permanent: fails at once
    n = notifier(store, clock, team, pager)
    n.put([alert(severity="critical", starts_at_ms=clock())])
    n.flush_due()
    n.deliverer.deliver_due()
    clock.advance(30)  # the team's group_wait: it is told ChannelDown fires
    n.flush_due()
    n.deliverer.deliver_due()
    restarted = notifier(store, clock, team, pager)  # same state file, nothing in memory
    pager.statuses = [200]
    clock.advance(1)
    restarted.put([alert(name="Other", severity="critical", starts_at_ms=clock())])
    restarted.flush_due()
    restarted.deliverer.deliver_due()
    clock.advance(30)  # the team's group_wait for the resolution's new group
    restarted.flush_due()
    restarted.deliverer.deliver_due()
    told = [b for _, b, _ in team.posts if b["commonLabels"].get("alertname") == CHANNEL_DOWN]
    assert [b["status"] for b in told] == ["firing", "resolved"]
    assert {a["labels"]["config"] for a in told[1]["alerts"]} == {"webhook/0", "webhook/1"}
    assert all(path.startswith("/pager") for path in pager.paths())  # never told itself


def test_finished_rows_and_old_log_entries_are_pruned_pending_ones_never(store):
    clock = Clock()
    team, pager = Receiver(), Receiver(statuses=(200, 200, 503))
    n = notifier(store, clock, team, pager)
    n.put([alert(severity="critical", starts_at_ms=clock())])
    n.flush_due()
    n.deliverer.deliver_due()  # two delivered
    clock.advance(1)
    n.put([alert(name="Other", severity="critical", starts_at_ms=clock())])
    n.flush_due()
    n.deliverer.deliver_due()  # the server answers 503 now: both stay pending
    statuses = sorted(r.status for r in store.outbox_rows())
    assert statuses == ["delivered", "delivered", "pending", "pending"]
    assert store.notifications_prune(before_ms=clock() + 1) == 2 + 2  # rows and log entries
    assert sorted(r.status for r in store.outbox_rows()) == ["pending", "pending"]


def test_a_row_read_before_another_thread_sent_it_is_not_sent_again(store):
    clock = Clock()
    team, pager = Receiver(), Receiver()
    n = notifier(store, clock, team, pager)
    n.put([alert(severity="critical", starts_at_ms=clock())])
    n.flush_due()
    stale = store.outbox_due(now_ms=clock())  # read, then another thread sends them all
    assert n.deliverer.deliver_due() == 2
    for row in stale:
        n.deliverer.deliver(row)
    assert len(pager.posts) == 2  # once each, not again from the stale read


def test_a_slow_group_does_not_hold_up_another_group_of_the_same_integration(store):
    clock = Clock()
    team, pager = Receiver(), Receiver()
    n = notifier(store, clock, team, pager)
    n.start()
    try:
        pager.hold.clear()  # the first group's requests stay open
        n.put([alert("First", severity="critical", starts_at_ms=clock())])
        wait_for(lambda: len(pager.posts) == 2, what="the first group's requests")
        n.put([alert("Second", severity="critical", starts_at_ms=clock())])
        wait_for(lambda: len(pager.posts) == 4, what="the second group sent meanwhile")
        assert {b["groupLabels"]["alertname"] for _, b, _ in pager.posts} == {"First", "Second"}
        # ... while the first group's sends are still open (not after they timed out)
        first = [
            r for r in store.outbox_rows() if r.payload["group_labels"]["alertname"] == "First"
        ]
        assert [(r.status, r.attempts) for r in first] == [("pending", 0)] * 2
    finally:
        pager.hold.set()
        n.stop()


def test_a_batch_commits_every_group_and_a_failing_write_rolls_back_alone(store):
    from monitoring.monitor.state import LogEntry

    def entry(group: str) -> LogEntry:
        return LogEntry(
            receiver="r",
            group_key=group,
            firing=frozenset({"f"}),
            resolved=frozenset(),
            sequence=0,
            sent_ms=1,
        )

    with store.batch():
        store.outbox_enqueue(rows=[], log=entry("a"))
        with pytest.raises(RuntimeError):
            with store._transaction(durable=False):
                store.outbox_enqueue(rows=[], log=entry("b"))
                raise RuntimeError("this group's write fails")
        store.outbox_enqueue(rows=[], log=entry("c"))
    found = {g: store.notification_log_get(receiver="r", group_key=g) for g in "abc"}
    assert found["a"] is not None and found["c"] is not None and found["b"] is None


def test_a_notification_failed_for_good_is_sent_again_at_the_next_group_interval(store):
    clock = Clock()
    team, pager = Receiver(), Receiver(statuses=(503,))
    n = notifier(store, clock, team, pager, deadline_ms=60_000)
    critical = alert(severity="critical", starts_at_ms=clock())
    n.put([critical])
    n.flush_due()
    while any(r.status == "pending" for r in store.outbox_rows()):
        n.deliverer.deliver_due()
        clock.advance(5)
    failed = len(pager.posts)
    pager.statuses = [200]  # the pager is back
    n.put([critical])  # still firing: handed again at each evaluation
    clock.advance(5 * 60)  # the pager route's group_interval
    n.flush_due()
    n.deliverer.deliver_due()
    again = [b for _, b, _ in pager.posts[failed:] if b["status"] == "firing"]
    assert {b["commonLabels"]["alertname"] for b in again} == {"HighCpu"}
    assert len(again) == 2  # both integrations of the pager, delivered this time
    assert {r.status for r in store.outbox_rows() if r.receiver == "pager"} >= {"delivered"}


def test_many_groups_are_in_flight_to_one_integration_at_once(store):
    # Twenty groups to the pager, its requests held open: all of them are sent before any is
    # answered (a sender thread a send allowed 8), each holding no thread of the notifier.
    team, pager = Receiver(), Receiver()
    pager.hold.clear()
    clock = lambda: round(time.time() * 1000)  # noqa: E731
    n = notifier(store, clock, team, pager)
    n.start()
    try:
        threads_before = threading.active_count()
        n.put([alert(f"Alert{i}", severity="critical", starts_at_ms=clock()) for i in range(20)])
        wait_for(lambda: len(pager.posts) == 40, what="every group's requests open at once")
        assert {r.status for r in store.outbox_rows() if r.receiver == "pager"} == {"pending"}
        # The receiver's 40 handler threads, the HTTP clients' one each: no sender threads.
        assert threading.active_count() - threads_before <= 40 + 2
        pager.hold.set()
        wait_for(
            lambda: (
                {r.status for r in store.outbox_rows() if r.receiver == "pager"} == {"delivered"}
            ),
            what="all delivered once answered",
        )
    finally:
        pager.hold.set()
        n.stop()


def test_outcomes_are_recorded_after_the_flush_running_not_during_it(store):
    # A burst's sends go out first: answers that come while a flush runs wait for it (the
    # flush lock held here stands for one) and are recorded once it ends.
    team, pager = Receiver(), Receiver()
    pager.hold.clear()
    clock = lambda: round(time.time() * 1000)  # noqa: E731
    n = notifier(store, clock, team, pager)
    n.start()
    try:
        # Started a minute ago: the team's route (group_wait 30s) flushes at once too, as the
        # pager's does (with a fresh start the wait for the team's requests took 30 s, all of
        # wait_for's deadline).
        started = clock() - 60_000
        n.put([alert(f"Burst{i}", severity="critical", starts_at_ms=started) for i in range(3)])
        wait_for(lambda: len(pager.posts) == 6, what="the pager's requests open")
        wait_for(lambda: len(team.posts) == 3, what="the team's requests")
        with n._flush_lock:  # a flush runs
            pager.hold.set()
            wait_for(
                lambda: len(n.deliverer._outcomes) >= 6,
                what="the pager's answers handed back by the HTTP client",
            )
            assert {r.status for r in store.outbox_rows() if r.receiver == "pager"} == {"pending"}
        wait_for(
            lambda: {r.status for r in store.outbox_rows()} == {"delivered"},
            what="every answer recorded once the flush ended",
        )
        assert n.deliverer._outcomes == []
    finally:
        pager.hold.set()
        n.stop()


def test_a_hung_integration_does_not_hold_up_another(store):
    team, pager = Receiver(), Receiver()
    pager.hold.clear()  # the pager's integrations hang
    clock = lambda: round(time.time() * 1000)  # noqa: E731
    n = notifier(store, clock, team, pager)
    n.start()
    try:
        n.put([alert(f"Hung{i}", severity="critical", starts_at_ms=clock()) for i in range(5)])
        wait_for(lambda: len(pager.posts) == 10, what="the pager's requests open")
        # The team gets its groups meanwhile (warnings: to the team only).
        n.put([alert(f"Team{i}", starts_at_ms=clock() - 60_000) for i in range(5)])
        n.flush_due()
        wait_for(
            lambda: (
                sum(r.status == "delivered" for r in store.outbox_rows() if r.receiver == "team")
                >= 5
            ),
            what="the team's notifications delivered while the pager hangs",
        )
        assert {r.status for r in store.outbox_rows() if r.receiver == "pager"} == {"pending"}
    finally:
        pager.hold.set()
        n.stop()


def test_a_failed_send_is_retried_by_the_running_worker_with_the_same_key(store):
    team, pager = Receiver(), Receiver(statuses=(503, 503, 200))
    clock = lambda: round(time.time() * 1000)  # noqa: E731
    n = Notifier(
        config(team.url, pager.url),
        state=store,
        clock=clock,
        env={},
        backoff=Backoff(base_ms=20, max_ms=100, rng=random.Random(1)),
    )
    n.start()
    try:
        n.put([alert(severity="critical", starts_at_ms=clock())])
        wait_for(
            lambda: (
                {r.status for r in store.outbox_rows() if r.receiver == "pager"} == {"delivered"}
            ),
            what="both pager rows delivered after the 503s",
        )
        rows = [r for r in store.outbox_rows() if r.receiver == "pager"]
        by_path: dict[str, list[str]] = {}
        for path, _, key in pager.posts:
            by_path.setdefault(path, []).append(key)
        # Each row's first attempt answered 503, its second 200, with the same key.
        assert sorted(r.attempts for r in rows) == [2, 2]
        for row in rows:
            path = "/pager" if row.integration == "webhook/0" else "/pager-no-resolved"
            assert set(by_path[path]) == {row.idempotency_key}
            assert len(by_path[path]) == row.attempts
        assert n.metrics.failed.get("webhook", 0) == 0
    finally:
        n.stop()


def test_a_group_whose_write_fails_is_left_for_the_next_flush_and_the_others_go_out(store, caplog):
    """A flush writes a chunk's groups in one statement a table; when that fails, each group
    is written alone, so the one SQLite refuses (a real trigger here) does not hold back the
    others of its chunk, and is written and sent by the next flush."""
    clock = Clock()
    team, pager = Receiver(), Receiver()
    n = notifier(store, clock, team, pager)
    names = ["Cpu", "Disk", "BadGroup", "Memory", "Net", "Queue", "Latency"]
    n.put([alert(name, severity="critical", starts_at_ms=clock()) for name in names])
    store._db.execute(
        "CREATE TEMP TRIGGER refuse_bad BEFORE INSERT ON notification_outbox"
        " WHEN NEW.payload LIKE '%BadGroup%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    assert n.flush_due() == 7  # chunks of 1, 2 and 4 groups: the bad one shares a chunk
    assert "writing a flush chunk failed" in caplog.text
    rows = store.outbox_rows()
    written = {r.payload["group_labels"]["alertname"] for r in rows}
    assert written == set(names) - {"BadGroup"} and len(rows) == 12  # two webhooks a group
    assert store.notification_log_get(receiver="pager", group_key=_key(n, "BadGroup")) is None
    assert n.deliverer.deliver_due() == 12
    assert len(pager.posts) == 12 and "BadGroup" not in json.dumps(pager.posts)

    store._db.execute("DROP TRIGGER refuse_bad")
    n.flush_due()  # the failed group was kept due: this flush writes it
    bad = [r for r in store.outbox_rows() if r.payload["group_labels"]["alertname"] == "BadGroup"]
    assert len(bad) == 2 and {r.status for r in bad} == {"pending"}
    assert n.deliverer.deliver_due() == 2
    assert sum("BadGroup" in json.dumps(body) for _, body, _ in pager.posts) == 2


def _key(n: Notifier, alertname: str) -> str:
    return next(
        g.group_key
        for g in n._groups.values()
        if g.route.options.receiver == "pager" and g.group_labels.get("alertname") == alertname
    )


def test_a_chunk_write_adds_each_row_once_and_keeps_existing_ones(store):
    """`outbox_enqueue_many`: rows come back in the order given with their ids; a (key,
    integration) already there is kept as it is and not returned."""
    from monitoring.monitor.state import LogEntry, OutboxWrite

    def write(key: str, group: str) -> OutboxWrite:
        rows = [
            {
                "idempotency_key": key,
                "receiver": "r",
                "integration": f"webhook/{i}",
                "kind": "webhook",
                "payload": {"k": key},
                "created_ms": 1,
                "deadline_ms": 2,
            }
            for i in range(2)
        ]
        return OutboxWrite(rows, LogEntry("r", group, frozenset({key}), frozenset(), 0, 1))

    first = store.outbox_enqueue_many([write("a", "g1")])
    again = store.outbox_enqueue_many([write("b", "g2"), write("a", "g1"), write("c", "g3")])
    assert [(r.idempotency_key, r.integration) for r in first] == [
        ("a", "webhook/0"),
        ("a", "webhook/1"),
    ]
    assert [(r.idempotency_key, r.integration) for r in again] == [
        ("b", "webhook/0"),
        ("b", "webhook/1"),
        ("c", "webhook/0"),
        ("c", "webhook/1"),
    ]
    stored = {(r.idempotency_key, r.integration): r.id for r in store.outbox_rows()}
    assert len(stored) == 6 and all(
        stored[(r.idempotency_key, r.integration)] == r.id for r in first + again
    )
    assert store.notification_log_get(receiver="r", group_key="g3").firing == {"c"}
