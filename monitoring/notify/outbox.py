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
Slack never holds up the email. On start, pending rows left by a previous process are
due at once. Finished rows and log entries older than `RETENTION_MS` (120 h, Alertmanager's
nflog retention) are pruned once an hour.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

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
        per_integration: int = 8,
    ) -> None:
        self.store = store
        self.integrations = integrations  # the current configuration's, read at each send
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.on_delivered, self.on_failed, self.on_attempt = on_delivered, on_failed, on_attempt
        self.workers = workers
        self.per_integration = per_integration
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        # In memory, under `_lock`: the rows handed to the senders and not yet sent (claimed,
        # so the worker's scan does not hand them again), the groups waiting for a sender
        # with their rows in order, per integration in arrival order, the groups being sent
        # and the sends in flight per integration. A group is (receiver, integration, key).
        self._lock = threading.Lock()
        self._claimed: set[int] = set()
        self._fresh: set[int] = set()  # claimed rows handed over by the flush that wrote them
        self._rows: dict[tuple[str, str, str], list[OutboxRow]] = {}
        self._waiting: dict[tuple[str, str], dict[tuple[str, str, str], None]] = {}
        self._busy: set[tuple[str, str, str]] = set()
        self._in_flight: dict[tuple[str, str], int] = {}
        # Deliveries made and not yet marked in the store, and whether a sender marks them.
        self._unmarked: list[tuple[OutboxRow, Delivery, float, int]] = []
        self._marking = False

    # -- one row ------------------------------------------------------------------------------
    def _integration(self, row: OutboxRow) -> Integration | None:
        for integration in self.integrations().get(row.receiver, []):
            if integration.name == row.integration:
                return integration
        return None

    def deliver(self, row: OutboxRow, *, fresh: bool = False) -> Delivery:
        """Send one row once and record what happened. `fresh`: the row was just written and
        handed over by the writer, so nobody can have sent it yet (no need to look again)."""
        attempt = self._attempt(row, fresh=fresh)
        if attempt is None:
            return Delivery.ok()
        self._record(row, *attempt)
        return attempt[0]

    def _attempt(self, row: OutboxRow, *, fresh: bool) -> tuple[Delivery, float, int] | None:
        """Send the row once: (what happened, seconds it took, when); None when it was sent
        or retried meanwhile by another thread (read before: not again)."""
        if not fresh and not self.store.outbox_unchanged(row):
            return None
        integration = self._integration(row)
        started = time.monotonic()
        if integration is None:
            delivery = Delivery.permanent(
                f"receiver {row.receiver} has no integration {row.integration} any more"
            )
        elif integration.channel is None:
            delivery = Delivery.permanent(integration.problem)
        else:
            try:
                notification = row.notification or notification_from_payload(row.payload)
                delivery = integration.channel.send(notification)
            except Exception as exc:  # a channel bug must not stop the worker
                logger.exception("channel %s failed", row.kind)
                delivery = Delivery.retryable(f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        self.on_attempt(row, delivery, seconds)
        return delivery, seconds, self.clock()

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

    def _mark_delivered(self, row: OutboxRow, delivery: Delivery, seconds: float, now: int) -> None:
        """Record a delivery made by a sender thread, with the others' made meanwhile: the
        first sender to find no marking under way commits every mark waiting, in one
        transaction, until none is left; the others go on sending. A row stays claimed until
        its mark is committed (the worker's scan must not send it again)."""
        with self._lock:
            self._unmarked.append((row, delivery, seconds, now))
            if self._marking:
                return
            self._marking = True
        while True:
            with self._lock:
                batch, self._unmarked = self._unmarked, []
                if not batch:
                    self._marking = False
                    return
            try:
                self.store.outbox_delivered_many((r.id, at_ms) for r, _, _, at_ms in batch)
            except Exception:  # left pending: sent again, with the same key, when due
                logger.exception("could not record %d deliveries", len(batch))
                with self._lock:
                    self._claimed.difference_update(r.id for r, *_ in batch)
                self._wake.set()
                continue
            with self._lock:
                self._claimed.difference_update(r.id for r, *_ in batch)
            for r, d, s, _ in batch:
                self.on_delivered(r, d, s)

    def deliver_due(self) -> int:
        """Send every due row once, in this thread (tests; the worker uses its pool)."""
        rows = self.store.outbox_due(now_ms=self.clock())
        for row in rows:
            self.deliver(row)
        return len(rows)

    # -- the worker ---------------------------------------------------------------------------
    def wake(self, rows: list[OutboxRow] | None = None) -> None:
        """New rows, committed: handed to the senders from this thread (a hand-off to the
        worker thread costs a GIL switch or more, reading them back a JSON decode each); without
        `rows`, or when not running, the worker reads what is due."""
        if self._pool is None or rows is None:
            self._wake.set()
            return
        self.offer(rows, fresh=True)

    def offer(self, rows: list[OutboxRow], *, fresh: bool = False) -> None:
        """Queue pending rows for sending (a row already queued or in flight is skipped) and
        start a sender for every group that can have one now. `fresh`: rows just written,
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
            self._dispatch_locked()

    def _dispatch_locked(self) -> None:
        if self._pool is None or self._stop.is_set():
            return
        for integration in self._waiting:
            while self._in_flight.get(integration, 0) < self.per_integration:
                taken = self._take_locked(integration)
                if taken is None:
                    break
                self._in_flight[integration] = self._in_flight.get(integration, 0) + 1
                self._pool.submit(self._deliver_groups, *taken)

    def _take_locked(
        self, integration: tuple[str, str]
    ) -> tuple[tuple[str, str, str], list[OutboxRow]] | None:
        """The integration's first waiting group not being sent, with its rows (now busy)."""
        waiting = self._waiting.get(integration, {})
        for key in waiting:
            if key not in self._busy:  # a busy group's rows go after the ones being sent
                del waiting[key]
                self._busy.add(key)
                return key, self._rows.pop(key)
        return None

    def start(self) -> None:
        self._stop.clear()
        with self._lock:
            self._claimed, self._fresh, self._rows, self._waiting = set(), set(), {}, {}
            self._busy, self._in_flight = set(), {}
            self._unmarked, self._marking = [], False
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
        self._thread = self._pool = None

    def _loop(self) -> None:
        """Rows nobody handed over: left pending by a previous process, due for a retry, or
        whose hand-off failed. Reads only (id, next attempt) until one is due."""
        pruned_at = None
        while not self._stop.is_set():
            next_ms = None
            try:
                now = self.clock()
                if pruned_at is None or now - pruned_at >= PRUNE_EVERY_MS:
                    pruned_at = now
                    self.store.notifications_prune(before_ms=pruned_at - RETENTION_MS)
                with self._lock:
                    claimed = set(self._claimed)
                times = [t for i, t in self.store.outbox_pending_schedule() if i not in claimed]
                if any(t <= now for t in times):
                    self.offer(self.store.outbox_due(now_ms=now, limit=1000))
                later = [t for t in times if t > now]
                next_ms = min(later) if later else None
            except Exception:  # the state file may be briefly locked: try again shortly
                logger.exception("the notification outbox could not be read")
            wait_s = 1.0 if next_ms is None else (next_ms - self.clock()) / 1000
            self._wake.wait(min(1.0, max(0.01, wait_s)))
            self._wake.clear()

    def _deliver_groups(self, key: tuple[str, str, str], rows: list[OutboxRow]) -> None:
        """Send a group's rows, then the integration's next waiting group, and so on: a sender
        goes on with the queue itself (a new task per group would cost a thread wake-up and a
        GIL hand-off each; in a burst of 100 groups that was a tenth of the notifier's time)."""
        taken: tuple[tuple[str, str, str], list[OutboxRow]] | None = (key, rows)
        while taken is not None:
            taken = self._deliver_rows(*taken)

    def _deliver_rows(
        self, key: tuple[str, str, str], rows: list[OutboxRow]
    ) -> tuple[tuple[str, str, str], list[OutboxRow]] | None:
        """Send one group's rows in order; returns the next group this sender takes, if any
        (its slot of the integration's `per_integration` passes on to it)."""
        retried = False
        taken = None
        delivered: set[int] = set()  # claimed until their marks are committed
        try:
            for row in rows:
                if self._stop.is_set():
                    return None
                with self._lock:
                    fresh = row.id in self._fresh
                    self._fresh.discard(row.id)
                attempt = self._attempt(row, fresh=fresh)
                if attempt is None:
                    continue
                if attempt[0].delivered:
                    delivered.add(row.id)
                    self._mark_delivered(row, *attempt)
                else:
                    self._record(row, *attempt)
                    retried = retried or attempt[0].retry
        except Exception:
            logger.exception("delivery to %s failed", key[:2])
            retried = True  # the worker's scan finds what is left
        finally:
            with self._lock:
                # Sent (or scheduled again): the worker's scan may take them up when due.
                self._claimed.difference_update(row.id for row in rows if row.id not in delivered)
                self._fresh.difference_update(row.id for row in rows)
                self._busy.discard(key)
                if self._pool is not None and not self._stop.is_set():
                    taken = self._take_locked(key[:2])
                if taken is None:
                    self._in_flight[key[:2]] -= 1
                    self._dispatch_locked()
            if retried:
                self._wake.set()  # the worker waits for the next attempt
        return taken
