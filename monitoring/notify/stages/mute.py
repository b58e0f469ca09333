"""The three muting stages: inhibition, the route's time intervals, silences.

Each drops firing alerts only. A resolved alert always passes: the dedup stage sends it only
to a receiver that was told it was firing, so an alert silenced (or inhibited, or in a mute
window) after it was notified still gets its resolved notice, a gap Alertmanager has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from monitoring.notify.config import Config
from monitoring.notify.notification import FIRING, NotifiedAlert
from monitoring.notify.routing import InhibitionIndex, Inhibitor, route_is_muted
from monitoring.notify.stages.context import FlushContext


class Muter(Protocol):
    """What silences provide (the silences store plugs in here)."""

    def is_silenced(self, labels: Mapping[str, str], now_ms: int) -> bool: ...


class _NoSilences:
    def is_silenced(self, labels: Mapping[str, str], now_ms: int) -> bool:
        return False


NO_SILENCES: Muter = _NoSilences()


def _keep(alerts: list[NotifiedAlert], muted: Callable[[NotifiedAlert], bool]):
    return [a for a in alerts if a.status != FIRING or not muted(a)]


class InhibitStage:
    def __init__(self, config: Config) -> None:
        self.inhibitor = Inhibitor(config.inhibit_rules)
        # The index of the flush running: every group of a flush has the same sources (the
        # same list), so it is built once a flush, not once a group.
        self._index: tuple[list, InhibitionIndex] | None = None

    def run(self, ctx: FlushContext, alerts: list[NotifiedAlert]) -> list[NotifiedAlert]:
        if not self.inhibitor.rules:
            return alerts
        cached = self._index
        if cached is None or cached[0] is not ctx.firing_labels:
            cached = self._index = (ctx.firing_labels, self.inhibitor.index(ctx.firing_labels))
        index = cached[1]
        return _keep(alerts, lambda a: index.inhibited_by(a.labels) is not None)


class TimeMuteStage:
    """The route's `mute_time_intervals` and `active_time_intervals`."""

    def __init__(self, config: Config) -> None:
        self.intervals = config.time_intervals

    def run(self, ctx: FlushContext, alerts: list[NotifiedAlert]) -> list[NotifiedAlert]:
        options = ctx.route.options
        if not (options.mute_time_intervals or options.active_time_intervals):
            return alerts  # most routes have none: no clock to convert for every group
        when = datetime.fromtimestamp(ctx.now_ms / 1000, UTC)
        if not route_is_muted(ctx.route, when, self.intervals):
            return alerts
        return _keep(alerts, lambda a: True)


class SilenceStage:
    def __init__(self, muter: Muter) -> None:
        self.muter = muter

    def run(self, ctx: FlushContext, alerts: list[NotifiedAlert]) -> list[NotifiedAlert]:
        return _keep(alerts, lambda a: self.muter.is_silenced(a.labels, ctx.now_ms))
