"""The escalation engine: plain functions over the state store, run on a timer by whichever
process owns the notifications (the monitor's loop in embedded mode, a periodic Celery task
in the app in Alertmanager mode; see ``runner.py`` and docs/escalation.md).

``escalate(store, policies, now_ms=…, send=…)`` looks at the firing alerts of the store (the
monitor's own, or those real Alertmanager sent to the app's receiver), and for each one its
policy matches and nobody acknowledged:

- every level whose ``after`` has passed since the alert started firing, and that the
  episode has not reached yet, is claimed (compare-and-set: once, whichever process runs
  the engine), its actions run (level 1) and their results recorded, then its receivers are
  told through the notifier's channels (``send``), the message saying the level and what
  the automated response did; level 4 puts the customer notice up (``status.py``);
- an episode that stopped firing (resolved, or a new episode started) ends: its notice comes
  down and the end is recorded.

An acknowledged episode climbs no further (``monitoring.acknowledge``); it still resolves and
ends like any other. Every step is an ``alert_event`` row (``store.events``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from monitoring.escalation import store as es
from monitoring.escalation.actions import ActionResult, action_run
from monitoring.escalation.policy import Level, Policies, Policy
from monitoring.monitor.state import StateStore, StoredAlert
from monitoring.notify.notification import NotifiedAlert
from monitoring.rules.alerting import FIRING

__all__ = ["LEVEL_NAMES", "Send", "escalate", "level_alert"]

logger = logging.getLogger(__name__)

LEVEL_NAMES = {
    1: "automated response",
    2: "on-call engineer",
    3: "senior engineer",
    4: "management and customer notice",
}

# (receiver, alert with the escalation annotations, level) -> None; raises when it could not
# even be queued (the level stays claimed: it is recorded as not sent).
Send = Callable[[str, NotifiedAlert, int], None]


def escalate(store: StateStore, policies: Policies, *, now_ms: int, send: Send) -> list[str]:
    """One round; returns what it did, one line per step (for logs and tests)."""
    done: list[str] = []
    firing = {
        a.fingerprint: a
        for a in store.alerts_active()
        if a.state == FIRING and a.fired_at_ms is not None
    }
    for open_ in es.escalations_open(store):
        alert = firing.get(open_.fingerprint)
        if alert is None or alert.fired_at_ms != open_.episode_ms:
            if es.escalation_end(
                store,
                fingerprint=open_.fingerprint,
                episode_ms=open_.episode_ms,
                at_ms=now_ms,
                reason="resolved",
            ):
                done.append(f"{open_.alertname}: escalation ended (resolved)")
    for alert in firing.values():
        policy = policies.match(alert.labels)
        if policy is None:
            continue
        episode = alert.fired_at_ms
        if es.ack_get(store, alert.fingerprint, episode) is not None:
            continue  # acknowledged: the climb stops here
        current = es.escalation_get(store, alert.fingerprint, episode)
        reached = current.level if current else 0
        for level in policy.levels:
            if level.number <= reached or now_ms < episode + level.after_ms:
                continue
            if not es.claim_level(
                store,
                fingerprint=alert.fingerprint,
                episode_ms=episode,
                alertname=alert.alertname,
                policy=policy.name,
                level=level.number,
                at_ms=now_ms,
                notice=_notice(level, alert, now_ms),
            ):
                break  # another process is on it
            done.append(f"{alert.alertname}: level {level.number}")
            results = [action_run(a) for a in level.actions]
            for result in results:
                es.event_add(
                    store,
                    fingerprint=alert.fingerprint,
                    episode_ms=episode,
                    kind="action",
                    level=level.number,
                    at_ms=now_ms,
                    detail=result.as_dict(),
                )
                done.append(f"{alert.alertname}: {result.action}: {result.text}")
            _tell(store, send, policy, level, alert, results, now_ms)
    return done


def _notice(level: Level, alert: StoredAlert, now_ms: int) -> dict | None:
    if level.notice is None:
        return None
    return {
        "title": level.notice.get("title", ""),
        "message": level.notice.get("message", ""),
        "since_ms": now_ms,
    }


def level_alert(
    alert: StoredAlert, policy: Policy, level: Level, results: list[ActionResult]
) -> NotifiedAlert:
    """The alert as a level's notification shows it: its own labels and annotations plus
    ``escalation`` (which level, why) and ``automated_response`` (what level 1 did)."""
    annotations = dict(alert.annotations)
    annotations["escalation_level"] = str(level.number)
    when = (
        f"not acknowledged {_duration(level.after_ms)} after it fired"
        if level.after_ms
        else "on firing"
    )
    annotations["escalation"] = (
        f"Escalation level {level.number} ({LEVEL_NAMES[level.number]}) of policy"
        f" {policy.name}: {when}"
    )
    if results:
        annotations["automated_response"] = "; ".join(
            f"{r.action}: {'done' if r.ok else 'FAILED'} ({r.text})" for r in results
        )
    return NotifiedAlert(
        labels=dict(alert.labels),
        annotations=annotations,
        starts_at_ms=alert.fired_at_ms or alert.active_at_ms or 0,
        value=alert.last_value,
    )


def _duration(ms: int) -> str:
    seconds = ms // 1000
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _tell(
    store: StateStore,
    send: Send,
    policy: Policy,
    level: Level,
    alert: StoredAlert,
    results: list[ActionResult],
    now_ms: int,
) -> None:
    notified = level_alert(alert, policy, level, results)
    for receiver in level.receivers:
        try:
            send(receiver, notified, level.number)
            outcome = {"receiver": receiver, "queued": True}
        except Exception as exc:  # recorded; the next level still goes out on its timer
            logger.exception("escalation to %s could not be queued", receiver)
            outcome = {"receiver": receiver, "queued": False, "error": str(exc)}
        es.event_add(
            store,
            fingerprint=alert.fingerprint,
            episode_ms=alert.fired_at_ms or 0,
            kind="notify",
            level=level.number,
            at_ms=now_ms,
            detail=outcome,
        )
