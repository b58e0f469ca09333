"""Alerts sent to the monitor from outside (a real Prometheus posting to `POST /api/v2/alerts`).

`ReceivedAlerts.parse(documents, now_ms=…, resolve_timeout_ms=…)` validates them as
Alertmanager's `postAlertsHandler` does (a missing `startsAt` is now, or `endsAt`; a missing
`endsAt` is now + `resolve_timeout`) and counts them; the valid alerts of a batch are kept even
when others are refused. `ReceivedAlert.notified(now_ms)` is the alert as the pipeline takes it:
resolved when its `endsAt` has passed, otherwise firing until then unless sent again (the
pipeline holds it; a repeat keeps the first `startsAt`). A monitor restart forgets them; a
Prometheus re-sends its firing alerts every evaluation, so they come back at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitoring.notify.notification import FIRING, RESOLVED, NotifiedAlert
from monitoring.rules.alerting import fingerprint
from monitoring.rules.gofmt import LABEL_NAME_RE, parse_rfc3339_ms

__all__ = ["AlertRejected", "ReceivedAlert", "ReceivedAlerts", "alert_parse"]


class AlertRejected(ValueError):
    """Why an alert of a POST was refused (Alertmanager's message)."""


@dataclass(frozen=True)
class ReceivedAlert:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at_ms: int
    ends_at_ms: int
    generator_url: str
    updated_at_ms: int

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def resolved(self, now_ms: int) -> bool:
        return self.ends_at_ms <= now_ms

    def notified(self, now_ms: int) -> NotifiedAlert:
        """The alert for the pipeline (a firing one's `ends_at_ms` is when it resolves)."""
        return NotifiedAlert(
            labels=self.labels,
            annotations=self.annotations,
            starts_at_ms=self.starts_at_ms,
            ends_at_ms=self.ends_at_ms,
            status=RESOLVED if self.resolved(now_ms) else FIRING,
            generator_url=self.generator_url,
        )


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise AlertRejected(f"{what} must be an object of strings")
    return dict(value)


def _time(document: Mapping, key: str) -> int | None:
    text = document.get(key)
    if text in (None, ""):
        return None
    try:
        return parse_rfc3339_ms(text)
    except ValueError as exc:
        raise AlertRejected(f"{key}: {exc}") from None


def alert_parse(document: Any, *, now_ms: int, resolve_timeout_ms: int) -> ReceivedAlert:
    """One postableAlert, with Alertmanager's defaults and validation (types.Alert.Validate)."""
    if not isinstance(document, Mapping):
        raise AlertRejected("an alert must be a JSON object")
    if "labels" not in document:
        raise AlertRejected("labels in body is required")
    # Empty label values are dropped, as Alertmanager drops them (removeEmptyLabels).
    labels = {k: v for k, v in _string_map(document["labels"], "labels").items() if v != ""}
    annotations = _string_map(document.get("annotations"), "annotations")
    generator_url = document.get("generatorURL") or ""
    if not isinstance(generator_url, str):
        raise AlertRejected("generatorURL must be a string")
    starts_at, ends_at = _time(document, "startsAt"), _time(document, "endsAt")
    if starts_at is None:
        starts_at = now_ms if ends_at is None else ends_at
    if ends_at is None:
        ends_at = now_ms + resolve_timeout_ms
    for name in [*labels, *annotations]:
        if not LABEL_NAME_RE.fullmatch(name):
            raise AlertRejected(f'invalid name "{name}"')
    if not labels:
        raise AlertRejected("at least one label pair required")
    if ends_at < starts_at:
        raise AlertRejected("start time must be before end time")
    return ReceivedAlert(labels, annotations, starts_at, ends_at, generator_url, now_ms)


class ReceivedAlerts:
    """Validation and Alertmanager's counts of received alerts; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Alertmanager's alertmanager_alerts_received_total{status} / _invalid_total.
        self.received_total = {"firing": 0, "resolved": 0}
        self.invalid_total = 0

    def parse(
        self, documents: Any, *, now_ms: int, resolve_timeout_ms: int
    ) -> tuple[list[ReceivedAlert], list[str]]:
        """The valid alerts of a POSTed list, and the problems of the others."""
        if not isinstance(documents, list):
            raise AlertRejected("the body must be a JSON list of alerts")
        problems = []
        valid = []
        for document in documents:
            try:
                valid.append(
                    alert_parse(document, now_ms=now_ms, resolve_timeout_ms=resolve_timeout_ms)
                )
            except AlertRejected as exc:
                problems.append(str(exc))
        with self._lock:
            self.invalid_total += len(problems)
            for alert in valid:
                self.received_total["resolved" if alert.resolved(now_ms) else "firing"] += 1
        return valid, problems
