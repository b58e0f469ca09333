"""The durable outbox's delivery worker: every pending row is sent until it is delivered or
its deadline passes.

Rows are written by the outbox stage (`stages/enqueue.py`) before anything is sent. The
worker takes the due ones (`StateStore.outbox_due`), sends each through its integration's
channel and records the outcome:

- delivered: the row is marked so (a kill between the send and this mark is the one case
  that sends a notification twice; both carry the same idempotency key);
- retryable: the next attempt is due after an exponential backoff (1 s doubling, at most
  60 s) with jitter (0.5–1.5×), unless that is past the row's deadline (10 min by default):
  then, and for a permanent failure, the row is failed and `on_failed` is told (the notifier
  raises `NotificationChannelDown` on the other receivers).

Groups send side by side, as Alertmanager sends each aggregation group on its own: the rows of
one group to one integration go in order (a resolution never overtakes its firing), different
groups in parallel, at most `per_integration` sends in flight to one integration, so a hung
Slack never holds up the email. An HTTP channel's sends hold no thread while in flight (its
`start_send` returns at once, its client's thread calls back with the outcome, and the next
row goes from there); email and the dashboard send in a pool's threads, at most
`BLOCKING_PER_INTEGRATION` at once each. A send's outcome is recorded by the worker thread, and
not while a flush is writing and handing over rows (`flushing`): a burst's sends all go out
before the interpreter is spent on the first ones' outcomes. On start, pending rows left by a previous process are
due at once. Finished rows and log entries older than `RETENTION_MS` (120 h, Alertmanager's
nflog retention) are pruned once an hour.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from monitoring.monitor.state import OutboxRow, StateStore
from monitoring.notify.integrations import Integration
from monitoring.notify.notification import Delivery, Notification, NotifiedAlert

__all__ = ["Backoff", "Deliverer", "notification_from_payload", "notification_payload"]

logger = logging.getLogger(__name__)


def notification_payload(n: Notification) -> dict:
    """A notification as the outbox row stores it (JSON)."""
    return {
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": dict(n.group_labels),
        "external_url": n.external_url,
        "dashboard_url": n.dashboard_url,
        "runbook_base_url": n.runbook_base_url,
        "sequence": n.sequence,
        "truncated_alerts": n.truncated_alerts,
        "alerts": [
            {
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "starts_at_ms": a.starts_at_ms,
                "ends_at_ms": a.ends_at_ms,
                "status": a.status,
                "generator_url": a.generator_url,
                "value": a.value,
            }
            for a in n.alerts
        ],
    }


def notification_from_payload(payload: Mapping) -> Notification:
    fields = dict(payload)
    alerts = tuple(NotifiedAlert(**a) for a in fields.pop("alerts"))
    return Notification(alerts=alerts, **fields)


class Backoff:
    """Exponential backoff with jitter: attempt n (1-based) waits base·2^(n-1), at most
    `max_ms`, times a random factor in [0.5, 1.5)."""

    def __init__(
        self, *, base_ms: int = 1000, max_ms: int = 60_000, rng: random.Random | None = None
    ) -> None:
        self.base_ms, self.max_ms = base_ms, max_ms
        self.rng = rng or random.Random()

    def delay_ms(self, attempts: int) -> int:
        step = min(self.max_ms, self.base_ms * 2 ** max(0, attempts - 1))
        return round(step * self.rng.uniform(0.5, 1.5))


RETENTION_MS = 120 * 3_600_000
PRUNE_EVERY_MS = 3_600_000

OnResult = Callable[[OutboxRow, Delivery, float], None]

# Sends in flight to one integration whose channel holds a thread a send (email, dashboard).
BLOCKING_PER_INTEGRATION = 8

Group = tuple[str, str, str]  # (receiver, integration, group key)


@dataclass(eq=False)
class _GroupSend:
    """One group's rows, sent in order by one of its integration's `per_integration` slots."""

    key: Group
    rows: list[OutboxRow]
    next: int = 0  # the row to send next
    delivered: set[int] = field(default_factory=set)  # claimed until their marks are in
    retried: bool = False  # a row is due again: the worker's scan takes it up


class Deliverer:
    def __init__(
        self,
        store: StateStore,
        integrations: Callable[[], Mapping[str, list[Integration]]],
        *,
        clock: Callable[[], int],
        backoff: Backoff | None = None,
        on_delivered: OnResult = lambda row, delivery, seconds: None,
        on_failed: OnResult = lambda row, delivery, seconds: None,
        on_attempt: OnResult = lambda row, delivery, seconds: None,
        workers: int = 32,
        per_integration: int = 64,
        flushing: threading.Lock | None = None,
    ) -> None:
        self.store = store
        self.integrations = integrations  # the current configuration's, read at each send
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.on_delivered, self.on_failed, self.on_attempt = on_delivered, on_failed, on_attempt
        self.workers = workers  # threads for the channels that block (email, dashboard)
        self.per_integration = per_integration
        self._wake = threading.Event()
        self._scan = False  # the worker's wake-up asks for a scan (not only marks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        # In memory, under `_lock`: the rows handed to the senders and not yet sent (claimed,
        # so the worker's scan does not hand them again), the groups waiting for a slot with
        # their rows in order, per integration in arrival order, the groups being sent, the
        # sends in flight per integration, and deliveries made but not yet marked in the store.
        self._lock = threading.Lock()
        self._claimed: set[int] = set()
        self._fresh: set[int] = set()  # claimed rows handed over by the flush that wrote them
        self._rows: dict[Group, list[OutboxRow]] = {}
        self._waiting: dict[tuple[str, str], dict[Group, None]] = {}
        self._busy: set[Group] = set()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._unmarked: list[tuple[OutboxRow, Delivery, float, int]] = []
        # Outcomes of sends, waiting for the worker: (group, row, seconds, delivery). Held by
        # the flush running (the notifier's lock) so they wait for it.
        self._outcomes: list[tuple[_GroupSend, OutboxRow, float, Delivery]] = []
        self._flushing = flushing or threading.Lock()

    # -- one row, in the caller's thread (tests, the escalation runner) -------------------------
    def _integration(self, row: OutboxRow) -> Integration | None:
        for integration in self.integrations().get(row.receiver, []):
            if integration.name == row.integration:
                return integration
        return None

    def deliver(self, row: OutboxRow) -> Delivery:
        """Send one row once, waiting for the outcome, and record what happened."""
        if not self.store.outbox_unchanged(row):
            return Delivery.ok()  # read before another thread sent or retried it: not again
        started = time.monotonic()
        integration = self._integration(row)
        if integration is None or integration.channel is None:
            delivery = _no_channel(row, integration)
        else:
            try:
                delivery = integration.channel.send(_notification(row))
            except Exception as exc:  # a channel bug must not stop the caller
                logger.exception("channel %s failed", row.kind)
                delivery = Delivery.retryable(f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        self.on_attempt(row, delivery, seconds)
        self._record(row, delivery, seconds, self.clock())
        return delivery

    def deliver_due(self) -> int:
        """Send every due row once, in this thread (tests; the running worker sends itself)."""
        rows = self.store.outbox_due(now_ms=self.clock())
        for row in rows:
            self.deliver(row)
        return len(rows)

    def _record(self, row: OutboxRow, delivery: Delivery, seconds: float, now: int) -> None:
        if delivery.delivered:
            self.store.outbox_delivered(row_id=row.id, at_ms=now)
            self.on_delivered(row, delivery, seconds)
            return
        next_ms = now + self.backoff.delay_ms(row.attempts + 1)
        if delivery.retry and next_ms <= row.deadline_ms:
            self.store.outbox_retry(row_id=row.id, next_attempt_ms=next_ms, error=delivery.reason)
            logger.warning(
                "notification to %s (%s) failed, retrying: %s",
                row.receiver,
                row.integration,
                delivery.reason,
            )
            return
        self.store.outbox_failed(row_id=row.id, error=delivery.reason)
        logger.error(
            "notification to %s (%s) failed for good: %s",
            row.receiver,
            row.integration,
            delivery.reason,
            extra={"idempotency_key": row.idempotency_key},
        )
        self.on_failed(row, delivery, seconds)

    # -- the running worker -------------------------------------------------------------------
    def wake(self, rows: list[OutboxRow] | None = None) -> None:
        """New rows, committed: handed to the senders from this thread (a hand-off to the
        worker thread costs a GIL switch or more, reading them back a JSON decode each); without
        `rows`, or when not running, the worker reads what is due."""
        if self._pool is None or rows is None:
            self._scan = True
            self._wake.set()
            return
        self.offer(rows, fresh=True)

    def offer(self, rows: list[OutboxRow], *, fresh: bool = False) -> None:
        """Queue pending rows for sending (a row already queued or in flight is skipped) and
        start sending every group that can have a slot now. `fresh`: rows just written,
        handed over by their writer (a row read from the table may have been sent since)."""
        with self._lock:
            for row in rows:
                if row.id in self._claimed:
                    continue
                self._claimed.add(row.id)
                if fresh:
                    self._fresh.add(row.id)
                key = (row.receiver, row.integration, row.payload.get("group_key", ""))
                self._rows.setdefault(key, []).append(row)
                self._waiting.setdefault(key[:2], {})[key] = None
            started = self._dispatch_locked()
        for group in started:
            self._go_on(group)

    def _dispatch_locked(self) -> list[_GroupSend]:
        """Give every free slot a waiting group; the caller starts them, outside the lock."""
        started: list[_GroupSend] = []
        if self._pool is None or self._stop.is_set():
            return started
        for integration in self._waiting:
            limit = self._limit(integration)
            while self._in_flight.get(integration, 0) < limit:
                group = self._take_locked(integration)
                if group is None:
                    break
                self._in_flight[integration] = self._in_flight.get(integration, 0) + 1
                started.append(group)
        return started

    def _limit(self, integration: tuple[str, str]) -> int:
        for candidate in self.integrations().get(integration[0], []):
            if candidate.name == integration[1]:
                if hasattr(candidate.channel, "start_send"):
                    return self.per_integration
                break
        return min(self.per_integration, BLOCKING_PER_INTEGRATION)

    def _take_locked(self, integration: tuple[str, str]) -> _GroupSend | None:
        """The integration's first waiting group not being sent, with its rows (now busy)."""
        waiting = self._waiting.get(integration, {})
        for key in waiting:
            if key not in self._busy:  # a busy group's rows go after the ones being sent
                del waiting[key]
                self._busy.add(key)
                return _GroupSend(key, self._rows.pop(key))
        return None

    def _go_on(self, group: _GroupSend | None) -> None:
        """Send the group's next row; when it has none left, the slot takes the integration's
        next waiting group, and so on (a loop: rows settled without a send go on here)."""
        while group is not None:
            if self._send_next(group):
                return  # the send's outcome goes on from its callback
            group = self._group_done(group)

    def _send_next(self, group: _GroupSend) -> bool:
        """Start sending the group's next row; False when none is left to send."""
        try:
            while group.next < len(group.rows) and not self._stop.is_set():
                row = group.rows[group.next]
                group.next += 1
                with self._lock:
                    fresh = row.id in self._fresh
                    self._fresh.discard(row.id)
                if not fresh and not self.store.outbox_unchanged(row):
                    continue  # read before another thread sent or retried it: not again
                started = time.monotonic()
                integration = self._integration(row)
                if integration is None or integration.channel is None:
                    self._settle(group, row, _no_channel(row, integration), 0.0)
                    continue
                channel = integration.channel
                done = functools.partial(self._sent, group, row, started)
                try:
                    start_send = getattr(channel, "start_send", None)
                    if start_send is not None:
                        start_send(_notification(row), done)
                    else:
                        assert self._pool is not None
                        self._pool.submit(_send_blocking, channel, _notification(row), done)
                    return True
                except Exception as exc:  # a channel bug must not stop the sending
                    logger.exception("channel %s failed", row.kind)
                    failed = Delivery.retryable(f"{type(exc).__name__}: {exc}")
                    self._settle(group, row, failed, time.monotonic() - started)
        except Exception:  # the state file locked past its timeout: the worker's scan retries
            logger.exception("delivery to %s failed", group.key[:2])
            group.retried = True
        return False

    def _sent(self, group: _GroupSend, row: OutboxRow, started: float, delivery: Delivery) -> None:
        """A send's outcome (from the channel's thread): handed to the worker, which records
        it and goes on with the group. The channel's thread goes back to its other sends at
        once; measured on a burst of 100 groups, recording outcomes in it took the interpreter
        from the flush still handing over the burst's last rows (their median arrival ~20%
        later)."""
        outcome = (group, row, time.monotonic() - started, delivery)
        with self._lock:
            self._outcomes.append(outcome)
            running = self._thread is not None
        if running:
            self._wake.set()
        else:  # an answer that came after `stop`, or no worker (tests)
            self._settle_outcomes()

    def _settle_outcomes(self) -> None:
        """Record the outcomes waiting and go on with their groups, once no flush runs."""
        with self._flushing:
            pass
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        for group, row, seconds, delivery in outcomes:
            try:
                self._settle(group, row, delivery, seconds)
            except Exception:
                logger.exception("delivery to %s failed", group.key[:2])
                group.retried = True
            self._go_on(group)

    def _settle(
        self, group: _GroupSend, row: OutboxRow, delivery: Delivery, seconds: float
    ) -> None:
        self.on_attempt(row, delivery, seconds)
        now = self.clock()
        if delivery.delivered:
            group.delivered.add(row.id)
            self._mark_delivered(row, delivery, seconds, now)
            return
        self._record(row, delivery, seconds, now)
        group.retried = group.retried or delivery.retry

    def _group_done(self, group: _GroupSend) -> _GroupSend | None:
        """Release the group's rows; returns the integration's next waiting group for the same
        slot, if any (other slots freed meanwhile are started from here)."""
        rows, key = group.rows, group.key
        others: list[_GroupSend] = []
        with self._lock:
            # Sent (or scheduled again): the worker's scan may take them up when due.
            self._claimed.difference_update(r.id for r in rows if r.id not in group.delivered)
            self._fresh.difference_update(r.id for r in rows)
            self._busy.discard(key)
            following = None
            if self._pool is not None and not self._stop.is_set():
                following = self._take_locked(key[:2])
            if following is None:
                self._in_flight[key[:2]] -= 1
                others = self._dispatch_locked()
        if group.retried:
            self._scan = True
            self._wake.set()  # the worker waits for the next attempt
        for other in others:
            self._go_on(other)
        return following

    def _mark_delivered(self, row: OutboxRow, delivery: Delivery, seconds: float, now: int) -> None:
        """A delivery made: the worker thread commits the marks waiting, together (one
        transaction a batch instead of ~45 µs of WAL a row). A row stays claimed until its mark
        is committed (the worker's scan must not send it again)."""
        with self._lock:
            self._unmarked.append((row, delivery, seconds, now))
            running = self._thread is not None
        if running:
            self._wake.set()
        else:  # an answer that came after `stop`
            self._commit_marks()

    def _commit_marks(self) -> None:
        with self._lock:
            batch, self._unmarked = self._unmarked, []
        if not batch:
            return
        try:
            self.store.outbox_delivered_many((r.id, at_ms) for r, _, _, at_ms in batch)
        except Exception:  # left pending: sent again, with the same key, when due
            logger.exception("could not record %d deliveries", len(batch))
            with self._lock:
                self._claimed.difference_update(r.id for r, *_ in batch)
            self._scan = True
            return
        with self._lock:
            self._claimed.difference_update(r.id for r, *_ in batch)
        for row, delivery, seconds, _ in batch:
            self.on_delivered(row, delivery, seconds)

    def start(self) -> None:
        self._stop.clear()
        with self._lock:
            self._claimed, self._fresh, self._rows, self._waiting = set(), set(), {}, {}
            self._busy, self._in_flight, self._unmarked = set(), {}, []
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="notify-send")
            self._thread = threading.Thread(target=self._loop, name="notify-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            # A send in flight is not waited for (a hung server would hold up the shutdown):
            # its row stays pending and goes out again, with the same key, after the restart.
            self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._thread = self._pool = None
        self._settle_outcomes()  # the outcomes come before
        self._commit_marks()  # the deliveries made before

    def _loop(self) -> None:
        """Commits the senders' "delivered" marks as they come, and scans for the rows nobody
        handed over: left pending by a previous process, due for a retry, or whose hand-off
        failed. A scan reads only (id, next attempt) until one is due."""
        pruned_at = None
        scan_at = 0.0  # monotonic
        while not self._stop.is_set():
            self._wake.clear()  # before looking: a wake-up from now on ends the next wait
            try:
                self._settle_outcomes()
            except Exception:  # on_attempt's bug: the next outcomes still go on
                logger.exception("after sending notifications")
            try:
                self._commit_marks()
            except Exception:  # on_delivered's bug: the marks are in
                logger.exception("after recording deliveries")
            if self._scan or time.monotonic() >= scan_at:
                self._scan = False
                next_ms = None
                try:
                    now = self.clock()
                    if pruned_at is None or now - pruned_at >= PRUNE_EVERY_MS:
                        pruned_at = now
                        self.store.notifications_prune(before_ms=pruned_at - RETENTION_MS)
                    with self._lock:
                        claimed = set(self._claimed)
                    schedule = self.store.outbox_pending_schedule()
                    times = [t for i, t in schedule if i not in claimed]
                    if any(t <= now for t in times):
                        self.offer(self.store.outbox_due(now_ms=now, limit=1000))
                    later = [t for t in times if t > now]
                    next_ms = min(later) if later else None
                except Exception:  # the state file may be briefly locked: try again shortly
                    logger.exception("the notification outbox could not be read")
                wait_s = 1.0 if next_ms is None else (next_ms - self.clock()) / 1000
                scan_at = time.monotonic() + min(1.0, max(0.01, wait_s))
            self._wake.wait(max(0.0, scan_at - time.monotonic()))


def _notification(row: OutboxRow) -> Notification:
    return row.notification or notification_from_payload(row.payload)


def _no_channel(row: OutboxRow, integration: Integration | None) -> Delivery:
    if integration is None:
        return Delivery.permanent(
            f"receiver {row.receiver} has no integration {row.integration} any more"
        )
    return Delivery.permanent(integration.problem)


def _send_blocking(channel, notification: Notification, done: Callable[[Delivery], None]) -> None:
    """A channel without `start_send` (email, dashboard), in a pool thread."""
    try:
        delivery = channel.send(notification)
    except Exception as exc:  # a channel bug must not stop the sending
        logger.exception("channel %s failed", channel.kind)
        delivery = Delivery.retryable(f"{type(exc).__name__}: {exc}")
    done(delivery)
