"""Alerts sent to the monitor from outside (a real Prometheus posting to `POST /api/v2/alerts`).

`ReceivedAlerts.put(documents, now_ms)` validates and stores them in memory, keyed by
fingerprint, as Alertmanager's `postAlertsHandler` does: a missing `startsAt` is now (or
`endsAt`), a missing `endsAt` is now + `resolve_timeout`; a repeat of a still-open alert keeps
the first `startsAt`. The valid alerts of a batch are kept even when others are refused.

Hand-off: the notification pipeline reads `received_alerts(now_ms)` each cycle and treats the
alerts in it as it treats the monitor's own firing alerts (an alert whose `ends_at_ms` has
passed is resolved). Alerts resolved longer than `resolve_timeout` ago are dropped from memory;
a monitor restart forgets them all, and Prometheus re-sends its firing alerts every
evaluation, so they come back within one evaluation interval.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

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
    """The alerts received over the API, in memory; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_fingerprint: dict[str, ReceivedAlert] = {}
        # Alertmanager's alertmanager_alerts_received_total{status} / _invalid_total.
        self.received_total = {"firing": 0, "resolved": 0}
        self.invalid_total = 0

    def put(self, documents: Any, *, now_ms: int, resolve_timeout_ms: int) -> list[str]:
        """Store the valid alerts of a POSTed list; returns the problems of the others."""
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
                old = self._by_fingerprint.get(alert.fingerprint)
                if old is not None and not old.resolved(alert.starts_at_ms):
                    alert = replace(alert, starts_at_ms=min(old.starts_at_ms, alert.starts_at_ms))
                self._by_fingerprint[alert.fingerprint] = alert
        return problems

    def received_alerts(
        self, now_ms: int, *, keep_resolved_ms: int = 300_000
    ) -> list[ReceivedAlert]:
        """Every alert received and not resolved longer than `keep_resolved_ms` ago, by
        fingerprint (what the pipeline consumes; drops the older resolved ones)."""
        with self._lock:
            for key, alert in list(self._by_fingerprint.items()):
                if alert.ends_at_ms < now_ms - keep_resolved_ms:
                    del self._by_fingerprint[key]
            return sorted(self._by_fingerprint.values(), key=lambda a: a.fingerprint)
