"""Silences, as Alertmanager 0.25 keeps them (silence/silence.go), persisted in the monitor's
state store.

A silence is matchers (`=`, `!=`, `=~`, `!~`, `monitoring.notify.matchers`' semantics) and a
time window. Its state follows from the clock: pending before `starts_at`, active until
`ends_at`, expired after. Rules kept from Alertmanager:

- a new silence starting in the past starts now; every change sets `updated_at`;
- `set` of an existing id updates it in place only when history is not rewritten: same
  matchers, and for an active silence the same start and an end not in the past, for a pending
  one a start not in the past. Otherwise the old silence is expired and a new one (new id) is
  created; an unknown id is `SilenceNotFound`;
- `expire` ends an active silence now, moves a pending one to expired (start = end = now), and
  leaves an expired one as it is;
- expired silences are kept for `retention_ms` (Alertmanager's `--data.retention`, 120h) after
  their end, then pruned.

Every change is also an event of the silence's audit trail (`SilenceEvent`: created, updated,
expired, replaced; who and when), kept as long as the silence; `events()` lists them. The actor
is the silence's `createdBy` for a creation or change, and whoever the caller names for an
expiry (the API's `?by=`; Alertmanager's API has no author for it).

Times are Unix milliseconds (the API's resolution). `Silences` is thread-safe; without a store
(`store=None`) silences live in memory only.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from monitoring.notify.matchers import Matcher, MatcherError
from monitoring.rules.gofmt import LABEL_NAME_RE

if TYPE_CHECKING:
    from monitoring.monitor.state import StateStore

__all__ = [
    "ACTIVE",
    "EXPIRED",
    "PENDING",
    "RETENTION_MS",
    "Silence",
    "SilenceError",
    "SilenceEvent",
    "SilenceNotFound",
    "Silences",
    "silence_matches_filter",
]

PENDING, ACTIVE, EXPIRED = "pending", "active", "expired"
RETENTION_MS = 120 * 3600_000


class SilenceError(ValueError):
    """A silence Alertmanager would refuse; the message is Alertmanager's."""


class SilenceNotFound(LookupError):
    def __init__(self, silence_id: str):
        super().__init__("silence not found")
        self.silence_id = silence_id


@dataclass(frozen=True)
class Silence:
    id: str  # "" for a silence not stored yet
    matchers: tuple[Matcher, ...]  # in the order given, as Alertmanager keeps them
    starts_at_ms: int
    ends_at_ms: int
    created_by: str
    comment: str
    updated_at_ms: int = 0

    def state(self, now_ms: int) -> str:
        if now_ms < self.starts_at_ms:
            return PENDING
        if now_ms < self.ends_at_ms:
            return ACTIVE
        return EXPIRED

    def matches(self, labels: Mapping[str, str]) -> bool:
        for m in self.matchers:
            if not m.matches(labels.get(m.name, "")):
                return False
        return True


@dataclass(frozen=True)
class SilenceEvent:
    """One entry of the audit trail: `action` is created, updated, expired or replaced (expired
    because a change would rewrite history; `detail` names the new id)."""

    silence_id: str
    at_ms: int
    action: str
    actor: str
    detail: str  # what the silence was after the change: matchers, window, comment

    def as_dict(self) -> dict:
        return {
            "silenceID": self.silence_id,
            "at_ms": self.at_ms,
            "action": self.action,
            "by": self.actor,
            "detail": self.detail,
        }


def _describe(silence: Silence) -> str:
    matchers = ", ".join(str(m) for m in silence.matchers)
    return (
        f"{{{matchers}}} from {silence.starts_at_ms} to {silence.ends_at_ms} ms: {silence.comment}"
    )


def _validate(silence: Silence) -> None:
    """silence.go's validateSilence, with its messages."""
    if not silence.matchers:
        raise SilenceError("silence invalid: at least one matcher required")
    for i, m in enumerate(silence.matchers):
        if not LABEL_NAME_RE.fullmatch(m.name):
            raise SilenceError(
                f'silence invalid: invalid label matcher {i}: invalid label name "{m.name}"'
            )
    if all(m.matches("") for m in silence.matchers):
        raise SilenceError("silence invalid: at least one matcher must not match the empty string")
    if silence.ends_at_ms < silence.starts_at_ms:
        raise SilenceError("silence invalid: end time must not be before start time")


def matcher_new(name: str, op: str, value: str) -> Matcher:
    """A silence matcher; SilenceError for a regex Alertmanager would not compile."""
    try:
        return Matcher.new(name, op, value)
    except MatcherError as exc:
        raise SilenceError(f"silence invalid: invalid label matcher: {exc}") from None


def silence_matches_filter(silence: Silence, filters: Iterable[Matcher]) -> bool:
    """The API's `filter`: every filter matcher is one of the silence's (name, operator and
    value equal), not a match against labels (CheckSilenceMatchesFilterLabels)."""
    own = {(m.name, m.op, m.value) for m in silence.matchers}
    return all((f.name, f.op, f.value) in own for f in filters)


_STATE_ORDER = {ACTIVE: 0, PENDING: 1, EXPIRED: 2}


def _sort_key(silence: Silence, now_ms: int) -> tuple[int, int]:
    # Active: next to end first; pending: next to start first; expired: latest ended first.
    state = silence.state(now_ms)
    if state == ACTIVE:
        return (0, silence.ends_at_ms)
    if state == PENDING:
        return (1, silence.starts_at_ms)
    return (2, -silence.ends_at_ms)


class Silences:
    def __init__(
        self, store: StateStore | None, *, clock, retention_ms: int = RETENTION_MS
    ) -> None:
        self.store = store
        self.clock = clock  # () -> Unix milliseconds
        self.retention_ms = retention_ms
        self._lock = threading.Lock()
        self._by_id: dict[str, Silence] = {}
        self._events: list[SilenceEvent] = []  # without a store only
        if store is not None:
            self._by_id = {s.id: s for s in store.silences_load()}
        self.gc()

    # -- changes ----------------------------------------------------------------------------
    def set(self, silence: Silence) -> str:
        """Create (id "") or update a silence; returns the id it is stored under."""
        with self._lock:
            now = self.clock()
            previous = self._by_id.get(silence.id) if silence.id else None
            if silence.id and previous is None:
                raise SilenceNotFound(silence.id)
            if previous is not None and _can_update(previous, silence, now):
                stored = self._put(replace(silence, updated_at_ms=now))
                self._record(stored, now, "updated", silence.created_by)
                return stored.id
            fresh = replace(
                silence,
                id=str(uuid.uuid4()),
                starts_at_ms=max(silence.starts_at_ms, now),
                updated_at_ms=now,
            )
            _validate(fresh)  # refused before the one it replaces is touched
            if previous is not None and previous.state(now) != EXPIRED:
                old = self._put(_expired(previous, now))
                self._record(old, now, "replaced", silence.created_by, f"by {fresh.id}")
            self._put(fresh)
            self._record(fresh, now, "created", silence.created_by)
            return fresh.id

    def expire(self, silence_id: str, actor: str = "") -> None:
        with self._lock:
            silence = self._by_id.get(silence_id)
            if silence is None:
                raise SilenceNotFound(silence_id)
            now = self.clock()
            if silence.state(now) != EXPIRED:
                self._record(self._put(_expired(silence, now)), now, "expired", actor or "unknown")

    def _record(self, silence: Silence, now: int, action: str, actor: str, note: str = "") -> None:
        detail = _describe(silence) + (f" ({note})" if note else "")
        event = SilenceEvent(silence.id, now, action, actor, detail)
        if self.store is not None:
            self.store.silence_event_add(event)
        else:
            self._events.append(event)

    def events(self, silence_id: str = "") -> list[SilenceEvent]:
        """The audit trail, oldest first; of one silence when `silence_id` is given."""
        found = self.store.silence_events() if self.store is not None else list(self._events)
        return [e for e in found if not silence_id or e.silence_id == silence_id]

    def _put(self, silence: Silence) -> Silence:
        _validate(silence)
        if self.store is not None:
            self.store.silence_put(silence)
        self._by_id[silence.id] = silence
        return silence

    def gc(self) -> int:
        """Drop the silences that ended more than the retention ago; returns how many."""
        with self._lock:
            horizon = self.clock() - self.retention_ms
            old = [s.id for s in self._by_id.values() if s.ends_at_ms < horizon]
            if old and self.store is not None:
                self.store.silences_delete(old)
            for silence_id in old:
                del self._by_id[silence_id]
            self._events = [e for e in self._events if e.silence_id not in old]
            return len(old)

    # -- reading ----------------------------------------------------------------------------
    def get(self, silence_id: str) -> Silence | None:
        with self._lock:
            return self._by_id.get(silence_id)

    def query(self, filters: Iterable[Matcher] = ()) -> list[Silence]:
        """Every silence kept (all states) whose matchers include `filters`, in the API's
        order: active, pending, expired."""
        filters = list(filters)
        now = self.clock()
        with self._lock:
            found = [s for s in self._by_id.values() if silence_matches_filter(s, filters)]
        return sorted(found, key=lambda s: _sort_key(s, now))

    def is_silenced(self, labels: Mapping[str, str], now_ms: int) -> list[str]:
        """The ids of the active silences matching `labels`, sorted (an alert's silencedBy)."""
        if not self._by_id:  # none kept (the usual case): no lock, no copy, for every alert
            return []
        with self._lock:
            silences = list(self._by_id.values())
        return sorted(s.id for s in silences if s.state(now_ms) == ACTIVE and s.matches(labels))

    def mutes(self, labels: Mapping[str, str], now_ms: int) -> bool:
        """The pipeline's Muter: whether any active silence matches `labels`."""
        return bool(self.is_silenced(labels, now_ms))

    def count(self, now_ms: int) -> dict[str, int]:
        """How many silences per state (alertmanager_silences{state})."""
        counts = {ACTIVE: 0, PENDING: 0, EXPIRED: 0}
        with self._lock:
            for silence in self._by_id.values():
                counts[silence.state(now_ms)] += 1
        return counts


def _expired(silence: Silence, now: int) -> Silence:
    if silence.state(now) == PENDING:
        return replace(silence, starts_at_ms=now, ends_at_ms=now, updated_at_ms=now)
    return replace(silence, ends_at_ms=now, updated_at_ms=now)


def _can_update(previous: Silence, new: Silence, now: int) -> bool:
    """silence.go's canUpdate: a change that does not rewrite what was silenced when."""
    if previous.matchers != new.matchers:
        return False
    state = previous.state(now)
    if state == ACTIVE:
        return new.starts_at_ms // 1000 == previous.starts_at_ms // 1000 and new.ends_at_ms >= now
    if state == PENDING:
        return new.starts_at_ms >= now
    return False
