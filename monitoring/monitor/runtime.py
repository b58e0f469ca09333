"""The monitor process: scrape loops, one evaluation loop per rule group, alert state persisted.

`Monitor` ties the parts together and owns their lifecycle:
  config (prometheus.yml) → Scraper → SampleStore ← Engine ← RuleGroups → evaluate.alerts_persist

- `start()` restores pending/firing alerts from the database (so `for` is not started over),
  starts the scrape loops and the group loops; `stop()` ends them.
- `reload()` loads the configuration and every rule file first, and switches only if all are
  valid; otherwise the running configuration stays and the errors are returned. Groups that
  survive a reload keep their alert state (Prometheus' CopyState).
- `cycle_once()` scrapes every target once and evaluates every group once (`monitor once`),
  without touching the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from django.db import DatabaseError, close_old_connections, connection

from monitoring.monitor.config import ConfigError, MonitorConfig, MonitorSettings, config_load
from monitoring.monitor.evaluate import (
    AlertRecord,
    alerts_active,
    alerts_persist,
    alerts_retire,
)
from monitoring.monitor.models import AlertInstance, AlertTransition
from monitoring.monitor.scrape import Scraper, now_ms
from monitoring.monitor.thresholds import rules_stale
from monitoring.rules.alerting import ZERO_TIME, Alert, AlertingRule, rfc3339
from monitoring.rules.engine import Engine
from monitoring.rules.group import RuleGroup
from monitoring.rules.loader import RuleFileError, load_rule_files
from monitoring.rules.values import format_go_duration, format_go_e
from monitoring.tsdb.disk import open_store
from monitoring.tsdb.store import SampleStore

__all__ = ["Monitor", "config_and_rules_load"]

logger = logging.getLogger(__name__)

GC_INTERVAL_S = 60.0
OUTAGE_TOLERANCE_MS = 3600_000


def config_and_rules_load(path: Path) -> tuple[MonitorConfig, list[RuleGroup]]:
    """The configuration and every rule file it names, or ConfigError with every problem."""
    config = config_load(path)
    try:
        groups = load_rule_files(
            config.rule_files,
            default_interval_s=config.evaluation_interval_ms / 1000,
            external_labels=config.external_labels,
        )
    except RuleFileError as exc:
        raise ConfigError([str(e) for e in exc.errors]) from None
    _warn_if_rules_stale(config.path.parent)
    return config, groups


def _warn_if_rules_stale(prometheus_dir: Path) -> None:
    """Rules generated from thresholds.yml still run when stale, but the operator should know."""
    if (
        not (prometheus_dir / "templates").is_dir()
        or not (prometheus_dir / "thresholds.yml").exists()
    ):
        return
    try:
        stale = rules_stale(prometheus_dir=prometheus_dir)
    except ConfigError as exc:
        logger.warning("thresholds.yml is invalid: %s", "; ".join(exc.errors))
        return
    for path in stale:
        logger.warning(
            "%s is out of date with thresholds.yml; run `manage.py monitor render-rules`", path
        )


def _datetime(t_ms: int | None) -> datetime | None:
    return None if t_ms is None else datetime.fromtimestamp(t_ms / 1000, tz=UTC)


def _ms(t: datetime | None) -> int | None:
    return None if t is None else round(t.timestamp() * 1000)


def alert_record(alert: Alert) -> AlertRecord:
    return AlertRecord(
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        state=alert.state,
        active_at=_datetime(alert.active_at_ms),
        fired_at=_datetime(alert.fired_at_ms),
        resolved_at=_datetime(alert.resolved_at_ms),
        value=alert.value,
        keep_firing_since=_datetime(alert.keep_firing_since_ms),
    )


def _snapshot_item(row: AlertInstance) -> dict:
    """A stored alert in the shape AlertingRule.restore() takes (its state_snapshot's)."""
    return {
        "labels": sorted([k, v] for k, v in row.labels.items()),
        "annotations": row.annotations,
        "state": row.state,
        "value": row.last_value if row.last_value is not None else float("nan"),
        "active_at_ms": _ms(row.active_at),
        "fired_at_ms": _ms(row.fired_at),
        "resolved_at_ms": _ms(row.resolved_at),
        "keep_firing_since_ms": _ms(row.keep_firing_since),
    }


class Monitor:
    def __init__(
        self,
        *,
        config_path: Path,
        settings: MonitorSettings,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], int] = now_ms,
        persist: bool = True,
        data_dir: Path | None = None,
    ):
        self.config_path = Path(config_path)
        self.settings = settings
        self.clock = clock
        self.persist = persist
        # With a data_dir (`monitor run`) samples survive a restart; without, memory only.
        retention_s = settings.retention_ms / 1000
        self.store = (
            open_store(data_dir, retention_s, now_ms=clock())
            if data_dir
            else SampleStore(retention_seconds=retention_s)
        )
        self.config, self.groups = config_and_rules_load(self.config_path)
        # A subquery without a step (x[5m:]) takes the global evaluation interval, as in
        # Prometheus.
        self.engine = Engine(self.store, subquery_step_ms=self.config.evaluation_interval_ms)
        self.scraper = Scraper(
            self.store,
            self.config,
            transport=transport,
            clock=clock,
            default_token=settings.scrape_token,
        )
        self.ready = False
        self.last_reload_ok = True
        self._lock = threading.RLock()  # one evaluation or reload at a time
        self._reload_lock = threading.Lock()  # one reload at a time (SIGHUP and /-/reload)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, group: RuleGroup, t_ms: int) -> list[AlertTransition]:
        """Evaluate one group at t_ms and store its alert state; returns the transitions."""
        with self._lock:
            group.eval(t_ms, self.engine, self.store)
            records = [alert_record(a) for a in group.alerts()]
        if not self.persist:
            return []
        # Outside the lock: a slow or unreachable database must not hold up the API.
        transitions = alerts_persist(
            group=group.name,
            rule_file=str(group.file),
            alerts=records,
            evaluated_at=_datetime(t_ms),
        )
        for t in transitions:
            logger.info(
                "alert %s %s -> %s",
                t.alertname,
                t.from_state,
                t.to_state,
                extra={"alert_labels": t.labels, "transition_id": t.id, "value": t.value},
            )
        return transitions

    def cycle_once(self) -> list[Alert]:
        """One scrape of every target, then one evaluation of every group; the active alerts."""
        self.scraper.scrape_all()
        t_ms = self.clock()
        active = []
        for group in self.groups:
            self.evaluate(group, t_ms)
            active.extend(group.active_alerts())
        return active

    def restore(self) -> int:
        """Give each alerting rule back its stored pending/firing alerts.

        As Prometheus' `rules.alert.for-outage-tolerance` (1 h): state older than that is not
        brought back; those alerts start over (and a stored firing one resolves)."""
        if not self.persist:
            return 0
        oldest = _datetime(self.clock() - OUTAGE_TOLERANCE_MS)
        rows = [r for r in alerts_active() if r.last_evaluated_at >= oldest]
        restored = 0
        for group in self.groups:
            mine = [
                r for r in rows if r.rule_group == group.name and r.rule_file == str(group.file)
            ]
            snapshot: dict[str, list[dict]] = {}
            for index, rule in enumerate(group.rules):
                if not isinstance(rule, AlertingRule) or any(
                    k.endswith(f":{rule.name}") for k in snapshot
                ):
                    continue  # duplicate alert names in one group: the first rule gets them
                items = [_snapshot_item(r) for r in mine if r.alertname == rule.name]
                if items:
                    snapshot[f"{index}:{rule.name}"] = items
            restored += group.restore(snapshot)
        self._retire_orphans()
        if restored:
            logger.info("restored %d pending/firing alerts from the database", restored)
        return restored

    def _retire_orphans(self) -> None:
        keep = {
            (group.name, rule.name)
            for group in self.groups
            for rule in group.rules
            if isinstance(rule, AlertingRule)
        }
        alerts_retire(keep=keep, evaluated_at=_datetime(self.clock()))

    # -- loops ----------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.restore()
        except DatabaseError:
            # Scraping, rules and the API do not need the database: run without the stored
            # state rather than not at all (alert state is written again once it is back).
            logger.exception("could not restore alert state from the database; starting afresh")
        self.scraper.start()
        self._start_loops()
        self.ready = True

    def _start_loops(self) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._group_loop, args=(g, self._stop), name=f"rules {g.name}", daemon=True
            )
            for g in self.groups
        ]
        self._threads.append(
            threading.Thread(target=self._gc_loop, args=(self._stop,), name="gc", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def _stop_loops(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        self._threads = []

    def _group_loop(self, group: RuleGroup, stop: threading.Event) -> None:
        interval = group.interval_s
        # Let the first scrapes land before the first evaluation. Prometheus reads its rules'
        # data from a TSDB that outlives a restart; ours starts empty, and an evaluation before
        # the first scrape would resolve every restored alert (and page again `for` later).
        started = time.monotonic()
        budget = self.scraper.first_scrapes_budget_s()
        while not self.scraper.first_scrapes_done() and time.monotonic() - started < budget:
            if stop.wait(0.05):
                return
        next_at = max(time.monotonic(), started + min(interval, 1.0))
        try:
            while not stop.wait(max(0.0, next_at - time.monotonic())):
                close_old_connections()
                try:
                    self.evaluate(group, self.clock())
                except Exception:  # the loop must survive a database hiccup or a bug
                    logger.exception("evaluation of group %s failed", group.name)
                next_at += interval
                if next_at < time.monotonic():
                    next_at = time.monotonic() + interval
        finally:
            connection.close()

    def _gc_loop(self, stop: threading.Event) -> None:
        while not stop.wait(GC_INTERVAL_S):
            removed = self.store.gc(self.clock())
            if removed:
                logger.debug("dropped %d series past retention", removed)

    def reload(self) -> list[str]:
        """Switch to the configuration on disk; on any error keep the running one."""
        try:
            config, groups = config_and_rules_load(self.config_path)
        except ConfigError as exc:
            self.last_reload_ok = False
            logger.error(
                "reload failed, keeping the running configuration: %s", "; ".join(exc.errors)
            )
            return exc.errors
        with self._reload_lock:
            running = bool(self._threads)
            # Stop the loops before taking the evaluation lock: a loop may be waiting for that
            # lock to evaluate, and joining it while holding the lock would stall the reload.
            if running:
                self._stop_loops()
            try:
                with self._lock:
                    self._switch_to(config, groups)
            finally:
                if running:
                    self._start_loops()
        self.last_reload_ok = True
        logger.info(
            "configuration reloaded: %d scrape jobs, %d rule groups",
            len(config.scrape_configs),
            len(groups),
        )
        return []

    def _switch_to(self, config: MonitorConfig, groups: list[RuleGroup]) -> None:
        old = {(g.file, g.name): g for g in self.groups}
        # Groups and rules the reload removed: their recorded series and ALERTS end now, as in
        # Prometheus, instead of lingering for the lookback.
        removed_at = self.clock()
        for group in groups:
            previous = old.pop((group.file, group.name), None)
            if previous is not None:
                group.copy_state_from(previous)
                previous.mark_stale(self.store, removed_at, from_index=len(group.rules))
        for gone in old.values():
            gone.mark_stale(self.store, removed_at)
        self.config, self.groups = config, groups
        self.engine.subquery_step_ms = config.evaluation_interval_ms
        self.scraper.update(config)
        if self.persist:
            try:
                self._retire_orphans()
            except DatabaseError:
                logger.exception("could not retire the alerts of removed rules")

    def stop(self) -> None:
        self.ready = False
        self._stop_loops()
        self.scraper.close()
        self.store.close()

    # -- what the API shows -----------------------------------------------------------------------
    def targets_json(self) -> list[dict]:
        out = []
        for state in self.scraper.targets():
            job = state.job
            out.append(
                {
                    "discoveredLabels": {
                        "__address__": state.target.address,
                        "__metrics_path__": job.metrics_path,
                        "__scheme__": job.scheme,
                        "__scrape_interval__": format_go_duration(job.interval_ms),
                        "__scrape_timeout__": format_go_duration(job.timeout_ms),
                        "job": job.job_name,
                        **state.target.labels,
                    },
                    "labels": dict(state.labels),
                    "scrapePool": job.job_name,
                    "scrapeUrl": state.url,
                    "globalUrl": state.url,
                    "lastError": state.last_error,
                    "lastScrape": _rfc3339(state.last_scrape),
                    "lastScrapeDuration": state.last_duration_s,
                    "health": state.health,
                    "scrapeInterval": format_go_duration(job.interval_ms),
                    "scrapeTimeout": format_go_duration(job.timeout_ms),
                }
            )
        return out

    def rules_json(self, rule_type: str | None) -> list[dict]:
        kind = {"alert": "alerting", "record": "recording"}.get(rule_type or "")
        groups = []
        with self._lock:  # not while a group evaluates and changes its alerts
            dicts = [group.api_dict() for group in self.groups]
        for data in dicts:
            if kind:
                data["rules"] = [r for r in data["rules"] if r["type"] == kind]
            groups.append(data)
        return groups

    def metadata_json(self) -> dict[str, list[dict]]:
        merged: dict[str, list[dict]] = {}
        for state in self.scraper.targets():
            for name, entry in state.metadata.items():
                if entry not in merged.setdefault(name, []):
                    merged[name].append(entry)
        return dict(sorted(merged.items()))

    def alerts_json(self) -> list[dict]:
        with self._lock:
            return [alert_api_dict(a) for g in self.groups for a in g.active_alerts()]


def alert_api_dict(alert: Alert) -> dict:
    """/api/v1/alerts' shape; Prometheus prints the value with Go's %e ('e', -1)."""
    data = alert.api_dict()
    data["value"] = format_go_e(alert.value)
    return data


def _rfc3339(t: datetime | None) -> str:
    """A scrape time as the API prints times (`rfc3339`), or Go's zero time for never."""
    return ZERO_TIME if t is None else rfc3339(round(t.timestamp() * 1000))
