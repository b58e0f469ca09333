"""The monitor watching itself: its own metrics, and the scrape job that reads them back.

Metrics (``registry(monitor)``, served at ``/metrics`` on the monitor's API port) carry
Prometheus' own names, so the same rules and dashboards work against real Prometheus:

- rules, per group (``rule_group="<file>;<group>"``, as Prometheus labels it):
  ``prometheus_rule_evaluations_total``, ``prometheus_rule_evaluation_failures_total``,
  ``prometheus_rule_group_iterations_missed_total``, ``prometheus_rule_group_last_duration_seconds``,
  ``prometheus_rule_group_last_evaluation_timestamp_seconds``,
  ``prometheus_rule_group_interval_seconds``, ``prometheus_rule_group_rules``;
- configuration: ``prometheus_config_last_reload_successful``,
  ``prometheus_config_last_reload_success_timestamp_seconds``;
- storage: ``prometheus_tsdb_head_series``, ``prometheus_tsdb_head_samples_appended_total``;
- scraping: ``prometheus_sd_discovered_targets{config=<job>, name="scrape"}`` (``up``,
  ``scrape_duration_seconds`` and ``scrape_samples_scraped`` are per-target series the
  scraper writes itself);
- the notifier, under Alertmanager's names (by ``integration``, the channel kind):
  ``alertmanager_notifications_total``, ``alertmanager_notifications_failed_total`` (per
  notification finished: delivered or failed for good), ``alertmanager_notification_latency_seconds``
  (a histogram of every attempt), ``alertmanager_alerts{state="active"|"suppressed"}``;
- ``prometheus_ready``, ``prometheus_build_info``, and prometheus_client's ``process_*``;
- the notifier's state, under Alertmanager's names (``monitoring.notify.state``):
  ``alertmanager_silences{state}``, ``alertmanager_alerts_received_total{status}``,
  ``alertmanager_alerts_invalid_total``, ``alertmanager_config_last_reload_successful``.

Everything is read from the monitor at scrape time (one collector, its own registry: the
app's global registry and its multiprocess files are never involved).

The monitor reads them back through the scrape job named ``prometheus``
(``scrape.with_self_scrape``), as Prometheus scrapes itself.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitoring.monitor.api_json import BUILDINFO
from monitoring.notify.pipeline import LATENCY_BUCKETS
from monitoring.notify.state import NotifierStateCollector

if TYPE_CHECKING:
    from monitoring.monitor.runtime import Monitor

__all__ = ["MonitorCollector", "registry"]


def _group_key(file: str, name: str) -> str:
    return f"{file};{name}"  # Prometheus' GroupKey


class MonitorCollector(Collector):
    """The monitor's state as metric families, read at each collection."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        yield from self._rules()
        yield from self._config()
        yield from self._storage()
        yield from self._scraping()
        yield from self._notifier()
        monitor = self.monitor
        ready = GaugeMetricFamily(
            "prometheus_ready",
            "Whether Prometheus startup was fully completed and the server is ready for normal "
            "operation.",
        )
        ready.add_metric([], 1.0 if monitor.ready else 0.0)
        yield ready
        info = GaugeMetricFamily(
            "prometheus_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, and "
            "goversion from which prometheus was built.",
            labels=["branch", "goarch", "goos", "goversion", "revision", "version"],
        )
        # Prometheus' labels; the "go" ones say what runs this monitor instead.
        runtime = f"python{platform.python_version()}"
        info.add_metric(
            [
                BUILDINFO["branch"],
                platform.machine(),
                sys.platform,
                runtime,
                BUILDINFO["revision"],
                BUILDINFO["version"],
            ],
            1.0,
        )
        yield info

    def _rules(self) -> Iterator[Metric]:
        labels = ["rule_group"]
        evaluations = CounterMetricFamily(
            "prometheus_rule_evaluations", "The total number of rule evaluations.", labels=labels
        )
        failures = CounterMetricFamily(
            "prometheus_rule_evaluation_failures",
            "The total number of rule evaluation failures.",
            labels=labels,
        )
        missed = CounterMetricFamily(
            "prometheus_rule_group_iterations_missed",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            labels=labels,
        )
        duration = GaugeMetricFamily(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            labels=labels,
        )
        last = GaugeMetricFamily(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            labels=labels,
        )
        interval = GaugeMetricFamily(
            "prometheus_rule_group_interval_seconds",
            "The interval of a rule group.",
            labels=labels,
        )
        rules = GaugeMetricFamily(
            "prometheus_rule_group_rules", "The number of rules.", labels=labels
        )
        for group in list(self.monitor.groups):
            key = [_group_key(group.file, group.name)]
            evaluations.add_metric(key, group.evaluations_total)
            failures.add_metric(key, group.evaluation_failures_total)
            missed.add_metric(key, group.iterations_missed_total)
            duration.add_metric(key, group.eval_duration_s)
            # Prometheus reports 0 for a group not evaluated yet.
            last.add_metric(key, (group.last_eval_ms or 0) / 1000)
            interval.add_metric(key, group.interval_s)
            rules.add_metric(key, len(group.rules))
        yield from (evaluations, failures, missed, duration, last, interval, rules)

    def _config(self) -> Iterator[Metric]:
        monitor = self.monitor
        ok = monitor.last_reload_successful
        # None: no configuration was read whole since the start (0, as "never").
        success = monitor.last_reload_success_time or 0.0
        successful = GaugeMetricFamily(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        successful.add_metric([], 1.0 if ok else 0.0)
        yield successful
        when = GaugeMetricFamily(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        )
        when.add_metric([], float(success))
        yield when

    def _storage(self) -> Iterator[Metric]:
        store = self.monitor.store
        series = GaugeMetricFamily(
            "prometheus_tsdb_head_series", "Total number of series in the head block."
        )
        series.add_metric([], store.stats()["series"])
        yield series
        appended = CounterMetricFamily(
            "prometheus_tsdb_head_samples_appended",
            "Total number of appended samples.",
            labels=["type"],  # Prometheus 2.42 also counts native histograms; we have floats
        )
        appended.add_metric(["float"], store.samples_appended)
        yield appended

    def _scraping(self) -> Iterator[Metric]:
        pools = GaugeMetricFamily(
            "prometheus_sd_discovered_targets",
            "Current number of discovered targets.",
            labels=["config", "name"],
        )
        counts: dict[str, int] = {}
        for state in self.monitor.scraper.targets():
            counts[state.job.job_name] = counts.get(state.job.job_name, 0) + 1
        for job, count in sorted(counts.items()):
            pools.add_metric([job, "scrape"], count)
        yield pools

    def _notifier(self) -> Iterator[Metric]:
        notifier = self.monitor.notifier
        if notifier is None:
            return
        labels = ["integration"]
        total = CounterMetricFamily(
            "alertmanager_notifications",
            "The total number of attempted notifications.",
            labels=labels,
        )
        failed = CounterMetricFamily(
            "alertmanager_notifications_failed",
            "The total number of failed notifications.",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "alertmanager_notification_latency_seconds",
            "The latency of notifications in seconds.",
            labels=labels,
        )
        metrics = notifier.metrics
        kinds = sorted({i.kind for entries in notifier.integrations.values() for i in entries})
        for kind in kinds:  # every integration, 0 until it sends (as Alertmanager's)
            total.add_metric([kind], metrics.notifications.get(kind, 0))
            failed.add_metric([kind], metrics.failed.get(kind, 0))
            counts, seconds, count = metrics.latency.get(kind, ([0] * len(LATENCY_BUCKETS), 0, 0))
            buckets = [(str(le), n) for le, n in zip(LATENCY_BUCKETS, counts, strict=True)]
            latency.add_metric([kind], [*buckets, ("+Inf", count)], seconds)
        alerts = GaugeMetricFamily(
            "alertmanager_alerts", "How many alerts by state.", labels=["state"]
        )
        for state, count in sorted(notifier.alert_counts().items()):
            alerts.add_metric([state], count)
        yield from (total, failed, latency, alerts)


def registry(monitor: Monitor) -> CollectorRegistry:
    """A registry of its own with the monitor's metrics and its process' ``process_*``."""
    own = CollectorRegistry(auto_describe=False)
    own.register(MonitorCollector(monitor))
    own.register(NotifierStateCollector(monitor.notifier_state, monitor.clock))
    ProcessCollector(registry=own)
    return own
