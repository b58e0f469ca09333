"""What the monitor's Alertmanager API (v2) reads and changes: the notifier's configuration as
loaded at start, its silences and the alerts received from outside.

`NotifierState.load(path, store=…, clock=…)` never raises: a configuration that does not load
is reported in `config_errors` (and logged) and the state runs without routing (no receivers,
no inhibition); silences and received alerts work either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring.configfile import ConfigError
from monitoring.notify.config import Config, config_load
from monitoring.notify.received import ReceivedAlerts
from monitoring.notify.routing import Inhibitor, Route
from monitoring.notify.silences import Silences

if TYPE_CHECKING:
    from monitoring.monitor.state import StateStore

__all__ = ["NotifierState", "NotifierStateCollector"]

logger = logging.getLogger(__name__)

DEFAULT_RESOLVE_TIMEOUT_MS = 300_000


@dataclass
class NotifierState:
    silences: Silences
    received: ReceivedAlerts = field(default_factory=ReceivedAlerts)
    config: Config | None = None
    config_path: Path | None = None
    config_text: str = ""  # the file as loaded: /api/v2/status' config.original
    config_errors: list[str] = field(default_factory=list)
    route: Route | None = None
    inhibitor: Inhibitor = field(default_factory=lambda: Inhibitor(()))
    started_at: float = field(default_factory=time.time)

    @classmethod
    def load(
        cls, path: Path | None, *, store: StateStore | None, clock: Callable[[], int]
    ) -> NotifierState:
        state = cls(Silences(store, clock=clock), config_path=path)
        if path is None:
            return state
        try:
            state.config_text = Path(path).read_text()
            config = config_load(Path(path))
        except OSError as exc:
            state.config_errors = [f"{path}: {exc.strerror or exc}"]
        except ConfigError as exc:
            state.config_errors = list(exc.errors)
        else:
            state.config = config
            state.route = Route.build(config.route)
            state.inhibitor = Inhibitor.from_config(config)
        if state.config_errors:
            logger.error(
                "notifier configuration %s does not load; running without routing: %s",
                path,
                "; ".join(state.config_errors),
                extra={"config_errors": state.config_errors},
            )
        return state

    @property
    def resolve_timeout_ms(self) -> int:
        return self.config.global_.resolve_timeout_ms if self.config else DEFAULT_RESOLVE_TIMEOUT_MS


class NotifierStateCollector(Collector):
    """Its metrics under Alertmanager's names, read at scrape time: `alertmanager_silences`
    {state}, `alertmanager_alerts_received_total`{status, version="v2"} (the valid alerts),
    `alertmanager_alerts_invalid_total`{version="v2"},
    `alertmanager_config_last_reload_successful` (the notifier file as loaded at start)."""

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
            "Whether the notifier configuration loaded.",
            value=0 if self.state.config_errors else 1,
        )
