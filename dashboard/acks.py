"""Acknowledging from the dashboard: plain functions over monitoring.acknowledge (the one
function every way in calls, so a dashboard acknowledgement is the notifier's record like any
other), plus what the alerts page needs to draw a row as acknowledged and its history.

The web process opens the monitor's state file (``MONITOR_STATE_PATH``) for each call, as
monitoring.acknowledge does; reads of a file that does not exist yet answer "nothing" rather
than create it (the monitor creates and migrates its own file).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from dashboard.history import alert_known, existing_store
from monitoring.acknowledge import AckError, acknowledge_alert, acknowledgements
from monitoring.rules.alerting import FIRING

__all__ = ["AckRefused", "acknowledge", "current_acks"]

MAX_COMMENT = 1000


class AckRefused(Exception):
    """Why an acknowledgement was refused, with the HTTP status that says it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def acknowledge(fingerprint: str, by: str, comment: str, *, state_path: Path | None = None) -> dict:
    """Acknowledge the firing alert as `by`: the acknowledgement that stands (the first of
    the episode) as a dict. AckRefused 404 for an alert the monitor never had, 409 for one
    that is not firing."""
    if len(comment) > MAX_COMMENT:
        raise AckRefused(400, f"comment: at most {MAX_COMMENT} characters")
    with existing_store(state_path) as store:
        if store is None:
            raise AckRefused(404, "the monitor has no state file yet: no alert to acknowledge")
        try:
            return asdict(acknowledge_alert(fingerprint, by, comment, store=store))
        except AckError as exc:
            # One the monitor's file knows (pending, resolved) is a conflict; one it never had
            # is not found.
            status = 409 if alert_known(store.path, fingerprint) else 404
            raise AckRefused(status, str(exc)) from exc


def current_acks(*, state_path: Path | None = None) -> list[dict]:
    """The acknowledgements of the episodes firing now (an ack of an earlier firing of the
    same alert ended with it), newest first."""
    with existing_store(state_path) as store:
        if store is None:
            return []
        episodes = {
            (a.fingerprint, a.fired_at_ms) for a in store.alerts_active() if a.state == FIRING
        }
        return [
            asdict(a)
            for a in acknowledgements(store=store)
            if (a.fingerprint, a.episode_ms) in episodes
        ]
