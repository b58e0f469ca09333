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
        # (receiver, integration, group key) being sent, and sends in flight per integration.
        self._busy: set[tuple[str, str, str]] = set()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._busy_lock = threading.Lock()
        self._submit_lock = threading.Lock()

    # -- one row ------------------------------------------------------------------------------
    def _integration(self, row: OutboxRow) -> Integration | None:
        for integration in self.integrations().get(row.receiver, []):
            if integration.name == row.integration:
                return integration
        return None

    def deliver(self, row: OutboxRow) -> Delivery:
        """Send one row once and record what happened."""
        if not self.store.outbox_unchanged(row):
            return Delivery.ok()  # read before another thread sent or retried it: not again
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
                delivery = integration.channel.send(notification_from_payload(row.payload))
            except Exception as exc:  # a channel bug must not stop the worker
                logger.exception("channel %s failed", row.kind)
                delivery = Delivery.retryable(f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        now = self.clock()
        self.on_attempt(row, delivery, seconds)
        if delivery.delivered:
            self.store.outbox_delivered(row_id=row.id, at_ms=now)
            self.on_delivered(row, delivery, seconds)
            return delivery
        next_ms = now + self.backoff.delay_ms(row.attempts + 1)
        if delivery.retry and next_ms <= row.deadline_ms:
            self.store.outbox_retry(row_id=row.id, next_attempt_ms=next_ms, error=delivery.reason)
            logger.warning(
                "notification to %s (%s) failed, retrying: %s",
                row.receiver,
                row.integration,
                delivery.reason,
            )
            return delivery
        self.store.outbox_failed(row_id=row.id, error=delivery.reason)
        logger.error(
            "notification to %s (%s) failed for good: %s",
            row.receiver,
            row.integration,
            delivery.reason,
            extra={"idempotency_key": row.idempotency_key},
        )
        self.on_failed(row, delivery, seconds)
        return delivery

    def deliver_due(self) -> int:
        """Send every due row once, in this thread (tests; the worker uses its pool)."""
        rows = self.store.outbox_due(now_ms=self.clock())
        for row in rows:
            self.deliver(row)
        return len(rows)

    # -- the worker ---------------------------------------------------------------------------
    def wake(self) -> None:
        """New rows: hand them to the senders from this thread (a hand-off to the worker
        thread costs a GIL switch or more), or to the worker when not running."""
        if self._pool is None:
            self._wake.set()
            return
        try:
            self._submit_due()
        except Exception:  # the worker tries again
            logger.exception("the notification outbox could not be read")
            self._wake.set()

    def start(self) -> None:
        self._stop.clear()
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
        pruned_at = None
        while not self._stop.is_set():
            try:
                if pruned_at is None or self.clock() - pruned_at >= PRUNE_EVERY_MS:
                    pruned_at = self.clock()
                    self.store.notifications_prune(before_ms=pruned_at - RETENTION_MS)
                self._submit_due()
                next_ms = self.store.outbox_next_attempt_ms()
            except Exception:  # the state file may be briefly locked: try again shortly
                logger.exception("the notification outbox could not be read")
                next_ms = None
            wait_s = 1.0 if next_ms is None else (next_ms - self.clock()) / 1000
            self._wake.wait(min(1.0, max(0.01, wait_s)))
            self._wake.clear()

    def _submit_due(self) -> None:
        with self._submit_lock:  # the worker and `wake` callers: one reader at a time
            self._submit_due_locked()

    def _submit_due_locked(self) -> None:
        by_group: dict[tuple[str, str, str], list[OutboxRow]] = {}
        for row in self.store.outbox_due(now_ms=self.clock(), limit=1000):
            group = row.payload.get("group_key", "")
            by_group.setdefault((row.receiver, row.integration, group), []).append(row)
        for key, rows in by_group.items():
            integration = key[:2]
            with self._busy_lock:
                if key in self._busy or self._in_flight.get(integration, 0) >= self.per_integration:
                    continue
                self._busy.add(key)
                self._in_flight[integration] = self._in_flight.get(integration, 0) + 1
            assert self._pool is not None
            self._pool.submit(self._deliver_rows, key, rows)

    def _deliver_rows(self, key: tuple[str, str, str], rows: list[OutboxRow]) -> None:
        try:
            for row in rows:
                if self._stop.is_set():
                    return
                self.deliver(row)
        except Exception:
            logger.exception("delivery to %s failed", key[:2])
        finally:
            with self._busy_lock:
                self._busy.discard(key)
                self._in_flight[key[:2]] -= 1
            self._wake.set()
