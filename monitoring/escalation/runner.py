"""Where the escalation timer runs, and how a level's notification leaves.

- Embedded mode (the monitor's notifier is on): ``EscalationRunner``, a thread of the monitor
  process, runs ``escalate`` every ``ESCALATION_INTERVAL`` seconds (default 15) over the
  monitor's state store; levels are queued in the notifier's outbox for its receivers and
  its delivery worker sends them (retries, deadline, ``NotificationChannelDown``).
- Alertmanager mode (``NOTIFY_CONFIG=off`` in the monitor; real Alertmanager notifies and
  posts to the app's receiver, which records the alerts in the same store): the app's
  periodic Celery task ``monitoring.escalation.escalate`` (beat, or ``beat_inprocess``) runs
  one round when ``ESCALATION_IN_APP`` is on; the receivers are the ones of the app's
  ``NOTIFY_CONFIG`` file, the rows go through the same outbox and are delivered at once by
  that task (those still pending are retried by its next run).

Both: the level's rows are written before anything is sent, under an idempotency key stable
for (alert, episode, level, receiver), so a rerun never sends a level twice.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping

from monitoring.escalation.engine import escalate
from monitoring.escalation.policy import LoadedPolicies, escalation_file, escalation_path
from monitoring.monitor.state import LogEntry, StateStore
from monitoring.notify.integrations import Integration
from monitoring.notify.notification import Notification, NotifiedAlert
from monitoring.notify.outbox import notification_payload

__all__ = ["ESCALATION_PREFIX", "EscalationRunner", "OutboxSender", "escalate_in_app"]

logger = logging.getLogger(__name__)

ESCALATION_PREFIX = "escalation/"  # the group key of every level's notification
DEFAULT_DEADLINE_MS = 600_000


def _links(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "external_url": env.get("NOTIFY_EXTERNAL_URL", ""),
        "dashboard_url": env.get("NOTIFY_DASHBOARD_URL", ""),
        "runbook_base_url": env.get("RUNBOOK_BASE_URL", ""),
    }


class OutboxSender:
    """Queue a level's notification for every integration of a receiver, as the pipeline's
    outbox stage does (rows and log entry in one transaction), then wake the sender."""

    def __init__(
        self,
        store: StateStore,
        integrations: Callable[[], Mapping[str, list[Integration]]],
        *,
        clock: Callable[[], int],
        wake: Callable[[], None] = lambda: None,
        env: Mapping[str, str] | None = None,
        deadline_ms: int = DEFAULT_DEADLINE_MS,
    ) -> None:
        self.store, self.integrations, self.clock, self.wake = store, integrations, clock, wake
        self.links = _links(os.environ if env is None else env)
        self.deadline_ms = deadline_ms
        self.keys: list[str] = []  # what this sender queued (the app task delivers those)

    def __call__(self, receiver: str, alert: NotifiedAlert, level: int) -> None:
        integrations = self.integrations().get(receiver)
        if not integrations:
            raise LookupError(f"no receiver {receiver!r} in the notifier configuration")
        now = self.clock()
        group_key = f"{ESCALATION_PREFIX}{alert.fingerprint}/{alert.starts_at_ms}/L{level}"
        notification = Notification(
            receiver=receiver,
            group_key=group_key,
            alerts=(alert,),
            group_labels={"alertname": alert.name},
            **self.links,
        )
        rows = [
            {
                "idempotency_key": notification.idempotency_key,
                "receiver": receiver,
                "integration": integration.name,
                "kind": integration.kind,
                "payload": notification_payload(notification),
                "created_ms": now,
                "deadline_ms": now + self.deadline_ms,
            }
            for integration in integrations
        ]
        log = LogEntry(receiver, group_key, frozenset({alert.fingerprint}), frozenset(), 0, now)
        self.store.outbox_enqueue(rows=rows, log=log)
        self.keys.append(notification.idempotency_key)
        self.wake()


def interval_s(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    return float(env.get("ESCALATION_INTERVAL", "") or 15.0)


class EscalationRunner:
    """The embedded mode's timer: a thread of the monitor running `escalate` on its store."""

    def __init__(self, monitor, *, env: Mapping[str, str] | None = None) -> None:
        self.monitor = monitor
        self.env = os.environ if env is None else env
        notifier = monitor.notifier
        self.policies = LoadedPolicies(
            escalation_file(monitor.settings.notify_config, self.env),
            known_receivers=_receivers(notifier.config) if notifier.config else None,
        )
        self.policies.load()
        self.sender = OutboxSender(
            monitor.state,
            lambda: notifier.integrations,
            clock=monitor.clock,
            wake=notifier.deliverer.wake,
            env=self.env,
            deadline_ms=notifier.deadline_ms,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reload(self) -> list[str]:
        config = self.monitor.notifier.config
        self.policies.known_receivers = _receivers(config) if config else None
        return self.policies.load()

    def run_once(self) -> list[str]:
        return escalate(
            self.monitor.state,
            self.policies.policies,
            now_ms=self.monitor.clock(),
            send=self.sender,
        )

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="escalation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        interval = interval_s(self.env)
        while not self._stop.wait(interval):
            try:
                for line in self.run_once():
                    logger.info("escalation: %s", line)
            except Exception:  # the loop must survive a bug or a busy state file
                logger.exception("escalation round failed")


def _receivers(config) -> list[str]:
    return list(config.receivers)


_app_policies: LoadedPolicies | None = None


def escalate_in_app(*, env: Mapping[str, str] | None = None) -> list[str]:
    """One round in the app (Alertmanager mode): the policies file reread when it changed
    (a bad one keeps the last good), the notifier file's receivers, delivery in this call."""
    global _app_policies
    from monitoring.monitor.config import settings_from_env
    from monitoring.notify.integrations import integrations_build, integrations_close
    from monitoring.notify.loaded import LoadedConfig
    from monitoring.notify.outbox import Deliverer

    env = dict(os.environ if env is None else env)
    settings = settings_from_env(env)
    from django.conf import settings as django_settings

    loaded = LoadedConfig(django_settings.NOTIFY_CONFIG)
    if loaded.load() or loaded.config is None:
        return [f"notifier configuration does not load: {'; '.join(loaded.errors)}"]
    path = escalation_path(env)
    if _app_policies is None or _app_policies.path != path:
        _app_policies = LoadedPolicies(path)
    _app_policies.known_receivers = _receivers(loaded.config)
    _app_policies.load()
    store = StateStore(settings.state_path)
    integrations = integrations_build(loaded.config, state=store, env=env)
    try:
        clock = lambda: round(time.time() * 1000)  # noqa: E731
        sender = OutboxSender(store, lambda: integrations, clock=clock, env=env)
        done = escalate(store, _app_policies.policies, now_ms=clock(), send=sender)
        deliverer = Deliverer(store, lambda: integrations, clock=clock)
        for row in store.outbox_due(now_ms=clock(), limit=1000):
            if row.payload.get("group_key", "").startswith(ESCALATION_PREFIX):
                deliverer.deliver(row)
        return done
    finally:
        integrations_close(integrations)
        store.close()
