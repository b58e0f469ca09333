"""What a channel is given (``Notification``) and what it answers (``Delivery``).

The shape of Alertmanager's ``Notifier.Notify(ctx, alerts) (retry bool, err)``: a channel sends
one notification once and says whether a failure is worth retrying. Retries, deduplication and
recording are pipeline stages around channels, never inside one.

A ``Notification`` is one group of alerts for one receiver, as Alertmanager's template data
(receiver, status, alerts, group/common labels, external URL) plus what our messages link to
(the dashboard, a silence) and an idempotency key. Times are Unix milliseconds, as the rule
engine's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii as _quote  # json.dumps' own quoting
from typing import Literal
from urllib.parse import quote

from monitoring.rules.alerting import fingerprint

__all__ = [
    "FIRING",
    "RESOLVED",
    "Delivery",
    "Notification",
    "NotifiedAlert",
    "silence_url",
]

FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True)
class NotifiedAlert:
    """One alert of a notification: Alertmanager's template ``Alert`` plus the rule's value."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at_ms: int
    ends_at_ms: int | None = None  # set when resolved
    status: Literal["firing", "resolved"] = FIRING
    generator_url: str = ""
    value: float | None = None  # the rule expression's value at the last evaluation

    @property
    def fingerprint(self) -> str:
        # Read at every stage: computed once (the instance is never changed; frozen, so
        # kept in its __dict__ directly, cheaper than functools.cached_property's lock).
        try:
            return self.__dict__["_fingerprint"]
        except KeyError:
            fp = self.__dict__["_fingerprint"] = fingerprint(self.labels)
            return fp

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    def with_times(self, starts_at_ms: int, ends_at_ms: int | None) -> NotifiedAlert:
        """A copy with other times: the same labels, so its fingerprint is not hashed again
        (every alert a POST hands the pipeline is copied so)."""
        copy = replace(self, starts_at_ms=starts_at_ms, ends_at_ms=ends_at_ms)
        if "_fingerprint" in self.__dict__:
            copy.__dict__["_fingerprint"] = self.__dict__["_fingerprint"]
        return copy


@dataclass(frozen=True)
class Notification:
    """One group of alerts for one receiver (what every channel renders).

    ``sequence`` numbers the notifications the pipeline sends for the same group and the same
    alert states (a ``repeat_interval`` re-send is a new notification, so it gets a new key);
    a retry, or a repeat after a crash between sending and recording, reuses the number."""

    receiver: str
    group_key: str
    alerts: tuple[NotifiedAlert, ...]
    group_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""  # the notifier's (Alertmanager's) URL: silences are made there
    dashboard_url: str = ""  # the in-app monitoring dashboard
    runbook_base_url: str = ""  # joined to a relative `runbook_url` annotation
    sequence: int = 0
    truncated_alerts: int = 0  # alerts left out of `alerts` (a receiver's max_alerts)

    @property
    def status(self) -> str:
        """Firing while any alert of the group fires, as Alertmanager's."""
        return FIRING if any(a.status == FIRING for a in self.alerts) else RESOLVED

    @property
    def firing(self) -> list[NotifiedAlert]:
        return [a for a in self.alerts if a.status == FIRING]

    @property
    def resolved(self) -> list[NotifiedAlert]:
        return [a for a in self.alerts if a.status == RESOLVED]

    @property
    def common_labels(self) -> dict[str, str]:
        return _common(a.labels for a in self.alerts)

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common(a.annotations for a in self.alerts)

    @property
    def silence_url(self) -> str:
        return silence_url(self.external_url, self.common_labels)

    @property
    def idempotency_key(self) -> str:
        """Stable for the same receiver, group, alert states and sequence: a receiver that
        already saw this key drops the message (the one repeat a crash between sending and
        recording can cause). 32 hex digits (128 bits of SHA-256)."""
        key = self.__dict__.get("_idempotency_key")  # computed once (frozen: never changes)
        if key is None:
            text = _key_text(self.receiver, self.group_key, self.sequence, self.alerts)
            key = self.__dict__["_idempotency_key"] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return key


def _key_text(
    receiver: str, group_key: str, sequence: int, alerts: tuple[NotifiedAlert, ...]
) -> str:
    """What the idempotency key hashes: exactly the text of `json.dumps([receiver, group_key,
    sequence, sorted((fingerprint, status, starts_at_ms), ...)])`, the derivation keys have
    always had (a receiver compares keys across restarts and upgrades), written out with
    the C string quoting alone: a third cheaper than the general encoder, once a
    notification."""
    states = ", ".join(
        f"[{_quote(fp)}, {_quote(status)}, {starts}]"
        for fp, status, starts in sorted((a.fingerprint, a.status, a.starts_at_ms) for a in alerts)
    )
    return f"[{_quote(receiver)}, {_quote(group_key)}, {sequence}, [{states}]]"


def _common(maps) -> dict[str, str]:
    maps = list(maps)
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def silence_url(external_url: str, labels: Mapping[str, str]) -> str:
    """Alertmanager's UI form for a new silence, pre-filled with matchers for `labels`
    (what its default templates link to), or "" without an external URL."""
    if not external_url:
        return ""
    matchers = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"{external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}')}"


@dataclass(frozen=True)
class Delivery:
    """A channel's answer: delivered, failed but worth retrying, or failed for good."""

    outcome: Literal["ok", "retryable", "permanent"]
    reason: str = ""

    @classmethod
    def ok(cls) -> Delivery:
        return cls("ok")

    @classmethod
    def retryable(cls, reason: str) -> Delivery:
        return cls("retryable", reason)

    @classmethod
    def permanent(cls, reason: str) -> Delivery:
        return cls("permanent", reason)

    @property
    def delivered(self) -> bool:
        return self.outcome == "ok"

    @property
    def retry(self) -> bool:
        return self.outcome == "retryable"
