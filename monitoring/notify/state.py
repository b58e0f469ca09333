"""What the monitor's Alertmanager API (v2) reads and changes besides the pipeline: the
notifier's configuration file as running (`LoadedConfig`, the one the pipeline runs on too),
its silences and the counts of alerts received from outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring.notify.loaded import LoadedConfig
from monitoring.notify.received import ReceivedAlerts
from monitoring.notify.silences import Silences

__all__ = ["NotifierState", "NotifierStateCollector"]


@dataclass
class NotifierState:
    silences: Silences
    config: LoadedConfig
    received: ReceivedAlerts = field(default_factory=ReceivedAlerts)
    started_at: float = field(default_factory=time.time)


class NotifierStateCollector(Collector):
    """Its metrics under Alertmanager's names, read at scrape time: `alertmanager_silences`
    {state}, `alertmanager_alerts_received_total`{status, version="v2"} (the valid alerts),
    `alertmanager_alerts_invalid_total`{version="v2"},
    `alertmanager_config_last_reload_successful` (the last load or reload of the notifier file)."""

    def __init__(self, state: NotifierState, clock: Callable[[], int]) -> None:
        self.state = state
        self.clock = clock

    def collect(self):
        silences = GaugeMetricFamily(
            "alertmanager_silences", "How many silences by state.", labels=["state"]
        )
        for name, count in sorted(self.state.silences.count(self.clock()).items()):
            silences.add_metric([name], count)
        yield silences
        received = CounterMetricFamily(
            "alertmanager_alerts_received",
            "The total number of received alerts.",
            labels=["status", "version"],
        )
        for status, count in sorted(self.state.received.received_total.items()):
            received.add_metric([status, "v2"], count)
        yield received
        invalid = CounterMetricFamily(
            "alertmanager_alerts_invalid",
            "The total number of received alerts that were invalid.",
            labels=["version"],
        )
        invalid.add_metric(["v2"], self.state.received.invalid_total)
        yield invalid
        yield GaugeMetricFamily(
            "alertmanager_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            value=0 if self.state.config.errors else 1,
        )
