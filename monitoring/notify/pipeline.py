"""The notification pipeline: alerts in, notifications into the outbox, delivered from there.

Alertmanager's dispatch/dispatch.go and notify/notify.go, in one picture:

    Notifier.put(alerts)                     the monitor hands its alerts after each evaluation
      → route (config route tree)            each alert joins one group per route it takes
      → group (stages/group.py)              group_wait, then every group_interval
      → at each flush, per group and receiver, the chain of `stages_build`:
          inhibit → time-interval mute → silence → dedup (notification log) → outbox
      → Deliverer (outbox.py)                retries with backoff until delivered or failed
      → record                               row delivered/failed, metrics, and on failure
                                             NotificationChannelDown to the other receivers

Resolved alerts pass every muting stage; the dedup stage sends a resolution only to a receiver
that was told the alert was firing (see stages/mute.py). Clocks are passed in.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from monitoring.monitor.state import OutboxRow, OutboxWrite, StateStore
from monitoring.notify.config import Config
from monitoring.notify.integrations import Integration, integrations_build, integrations_close
from monitoring.notify.notification import FIRING, RESOLVED, Delivery, NotifiedAlert
from monitoring.notify.outbox import Backoff, Deliverer
from monitoring.notify.routing import Inhibitor, Route
from monitoring.notify.stages import (
    NO_SILENCES,
    AggregationGroup,
    DedupStage,
    FlushContext,
    InhibitStage,
    Muter,
    OutboxStage,
    SilenceStage,
    Stage,
    TimeMuteStage,
)
from monitoring.rules.alerting import FIRING as RULE_FIRING
from monitoring.rules.alerting import Alert, fingerprint

__all__ = [
    "CHANNEL_DOWN",
    "HeldAlert",
    "Notifier",
    "NotifierMetrics",
    "notified_alerts",
    "stages_build",
]

logger = logging.getLogger(__name__)

CHANNEL_DOWN = "NotificationChannelDown"
DEFAULT_DEADLINE_MS = 600_000
DEFAULT_RESOLVE_TIMEOUT_MS = 300_000  # Alertmanager's global.resolve_timeout
LATENCY_BUCKETS = (1.0, 5.0, 10.0, 15.0, 20.0)  # Alertmanager's
FLUSH_CHUNK = 8  # groups a flush commits together (see _flush_due_locked)


def stages_build(
    config: Config,
    *,
    store: StateStore,
    integrations: dict[str, list[Integration]],
    muter: Muter,
    links: dict[str, str],
    deadline_ms: int,
    wake: Callable[[], None],
) -> list[Stage]:
    """The chain every flushed group goes through, in order."""
    send_resolved = {
        receiver: any(i.send_resolved for i in entries)
        for receiver, entries in integrations.items()
    }
    return [
        InhibitStage(config),
        TimeMuteStage(config),
        SilenceStage(muter),
        DedupStage(store, send_resolved),
        OutboxStage(store, integrations, links=links, deadline_ms=deadline_ms, wake=wake),
    ]


def notified_alerts(
    alerts: Iterable[Alert], generator_urls: Mapping[str, str] | None = None
) -> list[NotifiedAlert]:
    """What the monitor hands the notifier after an evaluation, as Prometheus sends to
    Alertmanager: firing alerts (startsAt = firedAt, else activeAt) and the resolved ones the
    rule keeps for 15 minutes (endsAt = resolvedAt); pending alerts are nobody's business.
    `generator_urls`: alertname → the rule's graph link (generatorURL)."""
    urls = generator_urls or {}
    notified = []
    for a in alerts:
        starts = a.fired_at_ms or a.active_at_ms
        value = None if a.value != a.value else a.value  # NaN: no value
        labels = dict(a.labels)
        common = {
            "labels": labels,
            "annotations": dict(a.annotations),
            "value": value,
            "generator_url": urls.get(labels.get("alertname", ""), ""),
        }
        if a.state == RULE_FIRING:
            notified.append(NotifiedAlert(starts_at_ms=starts, **common))
        elif a.fired_at_ms is not None and a.resolved_at_ms is not None:
            notified.append(
                NotifiedAlert(
                    starts_at_ms=starts, ends_at_ms=a.resolved_at_ms, status=RESOLVED, **common
                )
            )
    return notified


def _channel_down_labels(receiver: str, kind: str, config: str) -> dict[str, str]:
    return {
        "alertname": CHANNEL_DOWN,
        "severity": "critical",
        "team": "devops",
        "receiver": receiver,
        "integration": kind,
        "config": config,  # which of the receiver's configs: "webhook/1"
    }


@functools.lru_cache(maxsize=1024)
def _channel_down_fingerprint(receiver: str, kind: str, config: str) -> str:
    return fingerprint(_channel_down_labels(receiver, kind, config))


@dataclass
class NotifierMetrics:
    """Counts under Alertmanager's names, by integration (the channel kind)."""

    notifications: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    # integration → (bucket counts, sum, count)
    latency: dict[str, tuple[list[int], float, int]] = field(default_factory=dict)

    def observe(self, integration: str, seconds: float) -> None:
        buckets, total, count = self.latency.get(integration, ([0] * len(LATENCY_BUCKETS), 0, 0))
        buckets = [n + (seconds <= le) for n, le in zip(buckets, LATENCY_BUCKETS, strict=True)]
        self.latency[integration] = (buckets, total + seconds, count + 1)


@dataclass(frozen=True)
class HeldAlert:
    """A firing alert the pipeline holds, as the API shows it (endsAt: when it resolves
    unless handed again)."""

    alert: NotifiedAlert
    updated_at_ms: int
    ends_at_ms: int


class Notifier:
    """Alerts in, notifications out; `start()` runs the dispatcher and the delivery worker."""

    def __init__(
        self,
        config: Config | None,
        *,
        state: StateStore,
        clock: Callable[[], int],
        muter: Muter = NO_SILENCES,
        env: Mapping[str, str] | None = None,
        deadline_ms: int = DEFAULT_DEADLINE_MS,
        backoff: Backoff | None = None,
    ) -> None:
        self.env = os.environ if env is None else env
        self.state = state
        self.clock = clock
        self.muter = muter
        self.deadline_ms = deadline_ms
        self.metrics = NotifierMetrics()
        self._flush_lock = threading.Lock()  # one flush at a time; outcomes wait for it
        self.deliverer = Deliverer(
            state,
            lambda: self.integrations,
            clock=clock,
            backoff=backoff,
            on_attempt=self._attempted,
            on_delivered=self._delivered,
            on_failed=self._failed,
            flushing=self._flush_lock,
        )
        self._configure(config)
        self._lock = threading.Lock()
        self._alerts: dict[str, NotifiedAlert] = {}
        self._updated_ms: dict[str, int] = {}  # when each alert was last handed
        self._deadline_ms: dict[str, int] = {}  # when a firing alert resolves if not handed
        self._synthetic: set[str] = set()  # our own alerts: never stale
        self._groups: dict[tuple[str, str], AggregationGroup] = {}
        # When groups are due (next flush, sequence, key): a heap, see _schedule.
        self._timers: list[tuple[int, int, tuple[str, str]]] = []
        self._timer_seq = itertools.count()
        self._resolved: set[str] = set()  # held alerts that are not firing
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_deadline_ms: int | None = None  # the earliest of `_deadline_ms`, or later
        self._written: list[OutboxRow] = []  # rows of the flush running, handed after commit
        # Integrations whose NotificationChannelDown raised before a restart was looked up in
        # the log (once each: a later one is held in memory).
        self._down_looked_up: set[tuple[str, str]] = set()

    def _configure(self, config: Config | None) -> None:
        # None: no configuration loaded yet; alerts are held, routed nowhere, until one does.
        self.config = config
        self.route = Route.build(config.route) if config else None
        self.inhibitor = Inhibitor(config.inhibit_rules if config else ())
        self.integrations = (
            integrations_build(config, state=self.state, env=self.env) if config else {}
        )
        for entries in self.integrations.values():
            for integration in entries:
                if integration.problem:
                    logger.error("notifier: %s", integration.problem)
        self._stages_build()

    def _stages_build(self) -> None:
        links = {
            "external_url": self.env.get("NOTIFY_EXTERNAL_URL", ""),
            "dashboard_url": self.env.get("NOTIFY_DASHBOARD_URL", ""),
            "runbook_base_url": self.env.get("RUNBOOK_BASE_URL", ""),
        }
        if self.config is None:
            self.stages = []
            return
        self.stages = stages_build(
            self.config,
            store=self.state,
            integrations=self.integrations,
            muter=self.muter,
            links=links,
            deadline_ms=self.deadline_ms,
            wake=self._outbox_written,
        )

    def apply_config(self, config: Config) -> None:
        """Switch to a new (valid) configuration: the held alerts are grouped afresh by the
        new routes, as Alertmanager rebuilds its dispatcher; the notification log still
        says what each receiver was told, so nothing is sent twice for the reload."""
        old = self.integrations
        now = self.clock()
        with self._lock:
            self._configure(config)
            self._groups = {}
            self._timers = []
            wake = False
            for alert in self._alerts.values():
                wake = self._insert(alert, now) or wake
        if wake:
            self._wake.set()
        integrations_close(old)

    def use_muter(self, muter: Muter) -> None:
        """Plug in the silences (anything with `is_silenced(labels, now_ms)`), e.g. once the
        monitor has opened its silences store."""
        with self._lock:
            self.muter = muter
            self._stages_build()

    @property
    def resolve_timeout_ms(self) -> int:
        return self.config.global_.resolve_timeout_ms if self.config else DEFAULT_RESOLVE_TIMEOUT_MS

    # -- alerts in ----------------------------------------------------------------------------
    def _routes(self, alert: NotifiedAlert) -> list[Route]:
        if self.route is None:
            return []
        routes = self.route.match(alert.labels)
        if alert.name == CHANNEL_DOWN and alert.fingerprint in self._synthetic:
            # Told to the other receivers: the failing one would not get it.
            routes = [r for r in routes if r.options.receiver != alert.labels.get("receiver")]
        return routes

    def put(self, alerts: Iterable[NotifiedAlert]) -> None:
        """The current state of some alerts (firing, or resolved and kept for the notice).

        A firing alert is resolved at its `ends_at_ms` unless handed again before (Alertmanager's
        endsAt, as a Prometheus sends it); without one, `resolve_timeout` after it was handed
        (the monitor hands its own at each evaluation). A repeat keeps the first start.

        The alerts of one call are grouped together before any is flushed (a burst is not cut
        into slices to go out sooner): the alerts of one POST share their groups, and each is
        inhibited by the others, as in Alertmanager."""
        now = self.clock()
        wake = False
        with self._lock:
            for alert in alerts:
                fp = alert.fingerprint
                held = self._alerts.get(fp)
                if alert.status != FIRING and held is None:
                    # A resolution of an alert no group holds: it went out already, or its
                    # firing was never told (the dedup stage would drop it anyway).
                    if not self._told_somewhere(alert):
                        continue
                if alert.status == FIRING:
                    ends = alert.ends_at_ms
                    self._deadline_ms[fp] = now + self.resolve_timeout_ms if ends is None else ends
                    self._next_deadline(self._deadline_ms[fp])
                    starts = alert.starts_at_ms
                    if held is not None and held.status == FIRING:
                        starts = min(starts, held.starts_at_ms)
                    alert = alert.with_times(starts, None)
                self._alerts[fp] = alert
                if alert.status == FIRING:
                    self._resolved.discard(fp)
                else:
                    self._resolved.add(fp)
                self._updated_ms[fp] = now
                wake = self._insert(alert, now) or wake
        if wake:
            self._flush_now()

    def _insert(self, alert: NotifiedAlert, now: int) -> bool:
        """Put the alert into its groups (under the lock); whether one is due now."""
        due = False
        for route in self._routes(alert):
            key = (route.options.receiver, route.group_key(alert.labels))
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = AggregationGroup.create(route, alert.labels, now)
                self._schedule(key, group)
            before = group.next_flush_ms
            group.insert(alert, now)
            if group.next_flush_ms != before:
                self._schedule(key, group)
            due = due or group.due(now)
        return due

    def _schedule(self, key: tuple[str, str], group: AggregationGroup) -> None:
        """Remember when the group is next due (under the lock): a flush looks only at the
        groups whose time came, not at every group held. An entry whose group was flushed
        or changed meanwhile is dropped when its time comes."""
        heapq.heappush(self._timers, (group.next_flush_ms, next(self._timer_seq), key))

    def _told_somewhere(self, alert: NotifiedAlert) -> bool:
        # After a restart the groups are empty: a resolution still goes out when a receiver's
        # log says it was told the alert was firing.
        for route in self._routes(alert):
            entry = self.state.notification_log_get(
                receiver=route.options.receiver, group_key=route.group_key(alert.labels)
            )
            if entry is not None and alert.fingerprint in entry.firing:
                return True
        return False

    # -- flushing -----------------------------------------------------------------------------
    def _expire_stale(self, now: int) -> None:
        """A firing alert not handed again by its deadline is resolved then (its endsAt, or
        resolve_timeout after it was handed)."""
        if self._next_deadline_ms is None or now <= self._next_deadline_ms:
            return  # none is past its deadline: no need to look at every alert
        self._next_deadline_ms = None
        for fp, alert in list(self._alerts.items()):
            if alert.status == FIRING and fp not in self._synthetic:
                if self._deadline_ms[fp] >= now:
                    self._next_deadline(self._deadline_ms[fp])
                else:
                    resolved = replace(alert, status=RESOLVED, ends_at_ms=self._deadline_ms[fp])
                    self._alerts[fp] = resolved
                    self._resolved.add(fp)
                    for group in self._groups.values():
                        if fp in group.alerts:
                            group.alerts[fp] = resolved

    def _next_deadline(self, deadline_ms: int) -> None:
        if self._next_deadline_ms is None or deadline_ms < self._next_deadline_ms:
            self._next_deadline_ms = deadline_ms

    def flush_due(self) -> int:
        """Run the chain for every group whose time has come; returns how many."""
        with self._flush_lock:  # one flush at a time: the dispatcher's or a put's
            return self._flush_due_locked()

    def _flush_now(self) -> None:
        """A group is due at once (group_wait 0s): flush it in the thread that put the alert,
        as the dispatcher would a moment later, after waking up (a thread hand-off costs a
        GIL switch, and each alert would wait for the ones before it). When another flush
        runs, the dispatcher is woken to flush again after it."""
        if self._thread is None or not self._flush_lock.acquire(blocking=False):
            self._wake.set()
            return
        try:
            self._flush_due_locked()
        except Exception:  # the dispatcher tries again
            logger.exception("the notification dispatcher failed")
            self._wake.set()
        finally:
            self._flush_lock.release()

    def _flush_due_locked(self) -> int:
        now = self.clock()
        with self._lock:
            self._expire_stale(now)
            due, keys = [], []
            while self._timers and self._timers[0][0] <= now:
                key = heapq.heappop(self._timers)[2]
                group = self._groups.get(key)
                if group is not None and group.due(now) and key not in keys:
                    due.append(group)
                    keys.append(key)
            snapshots = [dict(g.alerts) for g in due]
            firing_labels = (  # the inhibition sources, when there are rules to look at them
                [a.labels for a in self._alerts.values() if a.status == FIRING]
                if self.inhibitor.rules
                else []
            )
        flushed = []
        start, size = 0, 1
        while start < len(due):
            # One commit for a few groups, 1, 2, 4, then FLUSH_CHUNK at a time: the first
            # notifications of a burst go out at once, while the next groups are flushed, and
            # a burst still takes far fewer commits than groups. The notifier's lock is not
            # taken inside (a put holds it while it reads the store: the other order would
            # deadlock).
            self._written = []
            chunk = range(start, min(start + size, len(due)))
            start, size = start + size, min(size * 2, FLUSH_CHUNK)
            with self.state.batch():
                ran: list[tuple[int, list[OutboxWrite]]] = []
                for i in chunk:
                    writes: list[OutboxWrite] = []
                    if self._flush_group(due[i], snapshots[i], now, firing_labels, writes):
                        ran.append((i, writes))
                flushed += self._write_chunk(ran, [due[i].group_key for i, _ in ran])
            if self._written:  # after the commit: a row is there before it is sent
                self.deliverer.wake(self._written)
        with self._lock:
            done = set(flushed)
            for i, (group, key) in enumerate(zip(due, keys, strict=True)):
                if i in done:
                    group.flushed_at(now, snapshots[i])
                if not group.alerts:
                    del self._groups[key]
                else:  # next at its group_interval, or again at once when it failed
                    self._schedule(key, group)
            # A firing alert no group holds (no configuration yet) is kept until it resolves,
            # to be grouped when a configuration loads; a resolved one goes with its groups.
            gone = list(self._resolved)
            held = {fp for g in self._groups.values() for fp in g.alerts} if gone else set()
            for fp in gone:
                if fp not in held:
                    del self._alerts[fp]
                    self._resolved.discard(fp)
                    self._updated_ms.pop(fp, None)
                    self._deadline_ms.pop(fp, None)
                    self._synthetic.discard(fp)
        return len(due)

    def _write_chunk(
        self, ran: list[tuple[int, list[OutboxWrite]]], group_keys: list[str]
    ) -> list[int]:
        """Write the outbox rows and log entries of a chunk's groups (`ran`: each group's
        index and writes) in one statement a table; returns the indexes of the groups
        written. When that fails, each group is written alone (its own savepoint), so one
        bad group is left for the next flush to try again while the others go out."""
        try:
            self._written += self.state.outbox_enqueue_many([w for _, ws in ran for w in ws])
            return [i for i, _ in ran]
        except Exception:
            logger.warning("writing a flush chunk failed; writing its groups one at a time")
        written = []
        for (i, writes), group_key in zip(ran, group_keys, strict=True):
            try:
                self._written += self.state.outbox_enqueue_many(writes)
            except Exception:  # the state file briefly unwritable: the next flush retries
                logger.exception("notifying group %s failed", group_key)
                continue
            written.append(i)
        return written

    def _flush_group(
        self,
        group: AggregationGroup,
        sent: dict,
        now: int,
        firing_labels: list,
        outbox_writes: list[OutboxWrite],
    ) -> bool:
        """The chain for one group, its outbox write left in `outbox_writes` for the chunk;
        False when it failed (the next flush tries again)."""
        ctx = FlushContext(
            now_ms=now,
            route=group.route,
            receiver=group.route.options.receiver,
            group_key=group.group_key,
            group_labels=group.group_labels,
            firing_labels=firing_labels,
            group_alerts=tuple(sent.values()),
            outbox_writes=outbox_writes,
        )
        alerts = sorted(sent.values(), key=lambda a: (a.starts_at_ms, a.fingerprint))
        try:
            for stage in self.stages:
                alerts = stage.run(ctx, alerts)
                if not alerts:
                    break
        except Exception:  # the state file briefly unwritable: the next flush retries
            logger.exception("notifying group %s failed", group.group_key)
            return False
        return True

    def _outbox_written(self, rows: list[OutboxRow]) -> None:
        self._written.extend(rows)

    def next_flush_ms(self) -> int | None:
        with self._lock:  # maybe earlier (an entry left by a change): the flush drops it
            return self._timers[0][0] if self._timers else None

    # -- delivery outcomes --------------------------------------------------------------------
    def _attempted(self, row: OutboxRow, delivery: Delivery, seconds: float) -> None:
        with self._lock:
            self.metrics.observe(row.kind, seconds)

    def _delivered(self, row: OutboxRow, delivery: Delivery, seconds: float) -> None:
        with self._lock:
            n = self.metrics.notifications
            n[row.kind] = n.get(row.kind, 0) + 1
        key = (row.receiver, row.integration)
        with self._lock:
            fresh = key not in self._down_looked_up
            self._down_looked_up.add(key)
            # Only its fingerprint is needed to look it up (labels hashed once per integration).
            firing = self._alerts.get(_channel_down_fingerprint(row.receiver, row.kind, key[1]))
        if firing is None and fresh:
            down = self._channel_down(row, FIRING)
            if self._told_somewhere(down):
                # Raised before a restart (held in memory only): the log says who was told.
                firing = down
                with self._lock:
                    self._synthetic.add(down.fingerprint)  # never told to the failing receiver
        if firing is not None and firing.status == FIRING:
            self.put([replace(firing, status=RESOLVED, ends_at_ms=self.clock())])

    def _failed(self, row: OutboxRow, delivery: Delivery, seconds: float) -> None:
        with self._lock:
            n, f = self.metrics.notifications, self.metrics.failed
            n[row.kind] = n.get(row.kind, 0) + 1
            f[row.kind] = f.get(row.kind, 0) + 1
        # Not told after all: the group's next flush sends its firing alerts again (to every
        # integration of the receiver: the log is kept per receiver).
        self.state.notification_log_untell(
            receiver=row.receiver,
            group_key=row.payload["group_key"],
            sequence=row.payload["sequence"],
            fingerprints=[
                fingerprint(a["labels"]) for a in row.payload["alerts"] if a["status"] == FIRING
            ],
        )
        if row.payload["alerts"] and all(
            a["labels"].get("alertname") == CHANNEL_DOWN for a in row.payload["alerts"]
        ):
            return  # telling a receiver that another is down failed: logged, not escalated
        alert = self._channel_down(row, FIRING, reason=delivery.reason)
        with self._lock:
            self._synthetic.add(alert.fingerprint)
            known = self._alerts.get(alert.fingerprint)
        if known is None or known.status != FIRING:
            self.put([alert])

    def _channel_down(self, row: OutboxRow, status: str, reason: str = "") -> NotifiedAlert:
        return NotifiedAlert(
            labels=_channel_down_labels(row.receiver, row.kind, row.integration),
            annotations={
                "summary": f"Notifications to {row.receiver} ({row.kind}, {row.integration}) fail",
                "description": f"A notification could not be delivered: {reason}",
                "runbook_url": f"docs/runbooks/{CHANNEL_DOWN}.md",
            },
            starts_at_ms=self.clock(),
            status=status,
        )

    # -- what the API reads -------------------------------------------------------------------
    def firing(self) -> list[HeldAlert]:
        """The firing alerts held now (past their deadline: resolved, not shown)."""
        now = self.clock()
        with self._lock:
            return [
                self._held(fp, alert)
                for fp, alert in self._alerts.items()
                if alert.status == FIRING
                and (fp in self._synthetic or self._deadline_ms.get(fp, now) >= now)
            ]

    def groups(self) -> list[tuple[Route, Mapping[str, str], list[HeldAlert]]]:
        """The aggregation groups with their firing alerts (route, group labels, alerts)."""
        live = {h.alert.fingerprint: h for h in self.firing()}
        with self._lock:
            groups = [(g.route, g.group_labels, list(g.alerts)) for g in self._groups.values()]
        return [
            (route, labels, [live[fp] for fp in fps if fp in live]) for route, labels, fps in groups
        ]

    def _held(self, fp: str, alert: NotifiedAlert) -> HeldAlert:
        updated = self._updated_ms.get(fp, alert.starts_at_ms)
        deadline = self._deadline_ms.get(fp, updated + self.resolve_timeout_ms)
        return HeldAlert(alert, updated_at_ms=updated, ends_at_ms=deadline)

    # -- what /metrics reads ------------------------------------------------------------------
    def alert_counts(self) -> dict[str, int]:
        """alertmanager_alerts{state}: firing alerts held, active or suppressed (inhibited or
        silenced) now."""
        now = self.clock()
        with self._lock:
            firing = [a for a in self._alerts.values() if a.status == FIRING]
        index = self.inhibitor.index([a.labels for a in firing])
        suppressed = sum(
            1
            for a in firing
            if index.inhibited_by(a.labels) is not None or self.muter.is_silenced(a.labels, now)
        )
        return {"active": len(firing) - suppressed, "suppressed": suppressed}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self.deliverer.start()  # rows left pending by a previous process go out first
        self._thread = threading.Thread(target=self._loop, name="notify-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.deliverer.stop()
        integrations_close(self.integrations)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.flush_due()
            except Exception:  # the loop must survive a bug
                logger.exception("the notification dispatcher failed")
            next_ms = self.next_flush_ms()
            wait_s = 1.0 if next_ms is None else (next_ms - self.clock()) / 1000
            self._wake.wait(min(1.0, max(0.005, wait_s)))
            self._wake.clear()
