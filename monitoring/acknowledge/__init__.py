"""Acknowledging an alert: someone is on it. The climb of its escalation stops; the alert
stays firing, visible and notified like any other, and resolves normally (acknowledging is
not silencing). An acknowledgement belongs to the episode (the firing since ``fired_at_ms``)
and ends with it: when the alert fires again it escalates again.

The one function every way in calls (the monitor's API, the signed link of a notification,
``manage.py monitor ack``, and the web dashboard from the app process):

    acknowledge_alert(fingerprint, by, comment="") -> Ack        # AckError: not firing
    acknowledge_by_name(alertname, by, comment="") -> list[Ack]  # every firing one
    acknowledgements(since_ms=0) -> list[Ack]                    # newest first
    alert_history(fingerprint) -> list[Event]                    # escalation steps, acks

Each takes ``store=`` (a ``StateStore``); without one the monitor's state file
(``MONITOR_STATE_PATH``) is opened for the call. Who and when are recorded, with an
``ack`` event in the alert's escalation history.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from monitoring.escalation import store as es
from monitoring.escalation.store import Ack, Event
from monitoring.monitor.state import StateStore
from monitoring.rules.alerting import FIRING

__all__ = [
    "Ack",
    "AckError",
    "acknowledge_alert",
    "acknowledge_by_name",
    "acknowledgements",
    "alert_history",
]

T = TypeVar("T")


class AckError(LookupError):
    """Nothing to acknowledge: no firing alert with that fingerprint or name."""


@contextmanager
def _opened(store: StateStore | None) -> Iterator[StateStore]:
    if store is not None:
        yield store
        return
    from monitoring.monitor.config import settings_from_env

    opened = StateStore(settings_from_env(dict(os.environ)).state_path)
    try:
        yield opened
    finally:
        opened.close()


def _now() -> int:
    return round(time.time() * 1000)


def acknowledge_alert(
    fingerprint: str,
    by: str,
    comment: str = "",
    *,
    store: StateStore | None = None,
    now_ms: Callable[[], int] = _now,
) -> Ack:
    """Acknowledge the firing episode of the alert `fingerprint` as `by`; returns the
    acknowledgement that stands (the first one, if it was acknowledged already)."""
    if not by.strip():
        raise ValueError("who acknowledges must be given")
    with _opened(store) as db:
        alert = next(
            (a for a in db.alerts_active() if a.fingerprint == fingerprint and a.state == FIRING),
            None,
        )
        if alert is None or alert.fired_at_ms is None:
            raise AckError(f"no firing alert with fingerprint {fingerprint}")
        ack = Ack(fingerprint, alert.fired_at_ms, alert.alertname, by.strip(), comment, now_ms())
        es.ack_put(db, ack)
        return es.ack_get(db, fingerprint, alert.fired_at_ms) or ack


def acknowledge_by_name(
    alertname: str, by: str, comment: str = "", *, store: StateStore | None = None
) -> list[Ack]:
    """Acknowledge every firing alert named `alertname`."""
    with _opened(store) as db:
        fingerprints = [
            a.fingerprint
            for a in db.alerts_active()
            if a.alertname == alertname and a.state == FIRING
        ]
        if not fingerprints:
            raise AckError(f"no firing alert named {alertname}")
        return [acknowledge_alert(fp, by, comment, store=db) for fp in fingerprints]


def acknowledgements(*, since_ms: int = 0, store: StateStore | None = None) -> list[Ack]:
    with _opened(store) as db:
        return es.acks(db, since_ms=since_ms)


def alert_history(fingerprint: str, *, store: StateStore | None = None) -> list[Event]:
    """The alert's escalation steps and acknowledgements, oldest first (the state changes
    themselves are ``StateStore.alert_transition`` rows)."""
    with _opened(store) as db:
        return es.events(db, fingerprint)
