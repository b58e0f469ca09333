"""The group stage: alerts of one route with the same group key wait and go out together.

Alertmanager's aggregation group (dispatch/dispatch.go): the first flush is `group_wait`
after the group is made (at once when its alert started longer than `group_wait` ago, as after
a restart), the next ones every `group_interval`. After a flush, the resolved alerts that were
flushed are dropped; an empty group is removed by the dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitoring.notify.notification import FIRING, NotifiedAlert
from monitoring.notify.routing import Route


@dataclass
class AggregationGroup:
    route: Route
    group_key: str
    group_labels: Mapping[str, str]
    next_flush_ms: int
    alerts: dict[str, NotifiedAlert] = field(default_factory=dict)
    flushed: bool = False

    @classmethod
    def create(cls, route: Route, labels: Mapping[str, str], now_ms: int) -> AggregationGroup:
        return cls(
            route=route,
            group_key=route.group_key(labels),
            group_labels=route.group_labels(labels),
            next_flush_ms=now_ms + route.options.group_wait_ms,
        )

    def insert(self, alert: NotifiedAlert, now_ms: int) -> None:
        self.alerts[alert.fingerprint] = alert
        if not self.flushed and alert.starts_at_ms + self.route.options.group_wait_ms < now_ms:
            self.next_flush_ms = min(self.next_flush_ms, now_ms)

    def due(self, now_ms: int) -> bool:
        return bool(self.alerts) and now_ms >= self.next_flush_ms

    def flushed_at(self, now_ms: int, sent: Mapping[str, NotifiedAlert]) -> None:
        """The group was flushed with `sent` (its alerts then): resolved ones that did not
        change since are done."""
        self.flushed = True
        self.next_flush_ms = now_ms + self.route.options.group_interval_ms
        for fp, alert in sent.items():
            if alert.status != FIRING and self.alerts.get(fp) == alert:
                del self.alerts[fp]
