"""The monitor process: scrape loops, one evaluation loop per rule group, alert state persisted.

`Monitor` ties the parts together and owns their lifecycle:
  config (prometheus.yml) → Scraper → SampleStore ← Engine ← RuleGroups → StateStore

- `start()` restores pending/firing alerts from its state file (so `for` is not started over),
  starts the scrape loops and the group loops; `stop()` ends them.
- The constructor runs on what loads of the configuration (a broken rule file, scrape job or
  thresholds.yml is left out and reported in `config_errors`), so a typo never stops it.
- `reload()` loads the configuration and every rule file first, and switches only if all are
  valid; otherwise the running configuration stays and the errors are returned. Groups that
  survive a reload keep their alert state (Prometheus' CopyState).
- `notifier` (monitoring.notify.pipeline.Notifier) is handed the group's alerts after each
  evaluation and started/stopped with the monitor. It runs on `notifier_state.config`, the
  one load of NOTIFY_CONFIG the API shows too; a file that does not load is logged and kept in
  `notify_errors`: the monitor runs, alerts are held, nobody is told until a reload loads.
- `cycle_once()` scrapes every target once and evaluates every group once (`monitor once`),
  without touching the state file.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
from prometheus_client import CollectorRegistry

from monitoring.configfile import ConfigError
from monitoring.escalation.runner import EscalationRunner
from monitoring.monitor import self_metrics
from monitoring.monitor.config import (
    MonitorConfig,
    MonitorSettings,
    app_base_url,
    app_target_apply,
    config_load_partial,
)
from monitoring.monitor.scrape import Scraper, now_ms
from monitoring.monitor.state import StateStore, StoredAlert, Transition
from monitoring.monitor.thresholds import rules_stale
from monitoring.notify.loaded import LoadedConfig
from monitoring.notify.notification import RESOLVED, NotifiedAlert
from monitoring.notify.pipeline import Notifier, notified_alerts
from monitoring.notify.silences import Silences
from monitoring.notify.state import NotifierState
from monitoring.rules.alerting import RESOLVED_RETENTION_MS, Alert, AlertingRule
from monitoring.rules.engine import Engine
from monitoring.rules.group import RuleGroup
from monitoring.rules.loader import load_rule_files
from monitoring.synthetic import CheckConfig, Prober, checks_load
from monitoring.thresholds import thresholds_load
from monitoring.tsdb.disk import open_store
from monitoring.tsdb.store import SampleStore

__all__ = ["Monitor", "config_and_rules_load", "config_and_rules_load_partial"]

logger = logging.getLogger(__name__)

GC_INTERVAL_S = 60.0
OUTAGE_TOLERANCE_MS = 3600_000


def config_and_rules_load(
    path: Path, *, app_target: str = ""
) -> tuple[MonitorConfig, list[RuleGroup]]:
    """The configuration, every rule file it names and thresholds.yml beside it, all valid, or
    ConfigError with every problem (a reload switches only to a configuration without one)."""
    config, groups, errors = config_and_rules_load_partial(path, app_target=app_target)
    if errors:
        raise ConfigError(errors)
    return config, groups


def config_and_rules_load_partial(
    path: Path, *, app_target: str = ""
) -> tuple[MonitorConfig, list[RuleGroup], list[str]]:
    """What can be loaded, and every problem with the rest (`file:line: problem`).

    At start-up the monitor runs on this: the scrape jobs without a problem and the rule files
    without one (a file is loaded whole or not at all). A broken thresholds.yml only renders
    rules; it is reported, and the rule files on disk run as they are."""
    config, errors = config_load_partial(path)
    config, target_errors = app_target_apply(config, app_target)
    errors += target_errors
    groups: list[RuleGroup] = []
    for rule_file in config.rule_files:
        try:
            groups += load_rule_files(
                [rule_file],
                default_interval_s=config.evaluation_interval_ms / 1000,
                external_labels=config.external_labels,
            )
        except ConfigError as exc:
            errors += exc.errors
    errors += _thresholds_check(config.path.parent)
    return config, groups, errors


def _thresholds_check(prometheus_dir: Path) -> list[str]:
    """thresholds.yml's problems; when it is valid, a warning for rule files it no longer
    matches (they still run: the operator renders them when ready)."""
    if not (prometheus_dir / "thresholds.yml").exists():
        return []  # a deployment without generated rules
    try:
        thresholds_load(prometheus_dir / "thresholds.yml")
        if not (prometheus_dir / "templates").is_dir():
            return []
        stale = rules_stale(prometheus_dir=prometheus_dir)
    except ConfigError as exc:
        return exc.errors
    for path in stale:
        logger.warning(
            "%s is out of date with thresholds.yml; run `manage.py monitor render-rules`", path
        )
    return []


def _snapshot_item(row: StoredAlert) -> dict:
    """A stored alert in the shape AlertingRule.restore() takes (its state_snapshot's)."""
    return {
        "labels": sorted([k, v] for k, v in row.labels.items()),
        "annotations": row.annotations,
        "state": row.state,
        "value": row.last_value if row.last_value is not None else float("nan"),
        "active_at_ms": row.active_at_ms,
        "fired_at_ms": row.fired_at_ms,
        "resolved_at_ms": row.resolved_at_ms,
        "keep_firing_since_ms": row.keep_firing_since_ms,
    }


def _state_open(path: Path) -> StateStore | None:
    """The state file; without one (an unwritable directory) the monitor still scrapes,
    evaluates and answers, it only forgets alert state across a restart."""
    try:
        return StateStore(path)
    except (OSError, sqlite3.Error):
        logger.exception("cannot open the monitor state file %s; alert state is not kept", path)
        return None


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
        self.state = _state_open(settings.state_path) if persist else None
        # With a data_dir (`monitor run`) samples survive a restart; without, memory only.
        retention_s = settings.retention_ms / 1000
        self.store = (
            open_store(data_dir, retention_s, now_ms=clock())
            if data_dir
            else SampleStore(retention_seconds=retention_s)
        )
        # Configuration state, as Prometheus reports it (/api/v1/status/runtimeinfo and the
        # prometheus_config_last_reload_* metrics): the problems of the configuration on disk
        # as last read (empty: all of it runs), whether that read was taken whole, and when a
        # read last was (unix seconds; None: not since the start).
        self.config_errors: list[str] = []
        self.last_reload_successful = True
        self.last_reload_success_time: float | None = None
        self.started_at = time.time()
        # A typo must not keep the monitor from running: start on what loads, report the rest.
        self.config, self.groups, errors = config_and_rules_load_partial(
            self.config_path, app_target=settings.app_target
        )
        self._config_state(errors)
        if errors:
            logger.error(
                "configuration has %d problems; running without the parts they are in: %s",
                len(errors),
                "; ".join(errors),
                extra={"config_errors": errors},
            )
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
        # SYNTHETIC_CONFIG: the probes write into the same store the rules read. A file that
        # does not load is reported with the configuration's problems; no probe runs then.
        self.prober: Prober | None = None
        if settings.synthetic_config is not None:
            checks: list[CheckConfig] = []
            try:
                checks = self._checks_load()
            except ConfigError as exc:
                self.config_errors += exc.errors
                self.last_reload_successful = False
                logger.error("synthetic checks not loaded: %s", "; ".join(exc.errors))
            self.prober = Prober(self.store, checks, clock=clock)
        # NOTIFY_CONFIG, loaded once: the pipeline runs on it and /api/v2 shows it.
        notify_config = LoadedConfig(settings.notify_config)
        notify_config.load()
        self.notifier_state = NotifierState(Silences(self.state, clock=clock), notify_config)
        # The pipeline needs the state store (its outbox and notification log); without a
        # configuration that loads it holds the alerts and tells nobody until one does.
        self.notifier: Notifier | None = None
        if settings.notify_config is not None and self.state is not None:
            self.notifier = Notifier(
                notify_config.config,
                state=self.state,
                clock=clock,
                # Silences made through /api/v2/silences (or amtool) mute the pipeline.
                muter=self.notifier_state.silences,
                deadline_ms=settings.notify_deadline_ms,
            )
        # Escalation policies beside NOTIFY_CONFIG: the embedded mode's timer (escalation/runner).
        self.escalation = EscalationRunner(self) if self.notifier is not None else None
        self.ready = False
        self._lock = threading.RLock()  # one evaluation or reload at a time
        self._reload_lock = threading.Lock()  # one reload at a time (SIGHUP and /-/reload)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, group: RuleGroup, t_ms: int) -> list[Transition]:
        """Evaluate one group at t_ms and store its alert state; returns the transitions."""
        with self._lock:
            group.eval(t_ms, self.engine, self.store)
            # Copies: the engine changes its alerts in place at the next evaluation.
            alerts = [dataclasses.replace(a) for a in group.alerts()]
        if self.state is None:
            return []
        # Outside the lock: a slow disk must not hold up the API.
        try:
            transitions = self.state.alerts_persist(
                group=group.name, rule_file=str(group.file), alerts=alerts, evaluated_at_ms=t_ms
            )
        except sqlite3.Error:
            # The next evaluation writes the whole current state again.
            logger.exception("could not record the alert state of group %s", group.name)
            return []
        finally:
            if self.notifier is not None:
                self.notifier.put(notified_alerts(alerts, self._generator_urls(group)))
        for t in transitions:
            logger.info(
                "alert %s %s -> %s",
                t.alertname,
                t.from_state,
                t.to_state,
                extra={"alert_labels": t.labels, "transition_id": t.id, "value": t.value},
            )
        return transitions

    def _generator_urls(self, group: RuleGroup) -> dict[str, str]:
        """Each alerting rule's link to its expression, as Prometheus' generatorURL."""
        base = f"http://{self.settings.listen_host}:{self.settings.listen_port}"
        return {
            rule.name: f"{base}/graph?g0.expr={quote(rule.expr)}&g0.tab=1"
            for rule in group.alerting_rules()
        }

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
        if self.state is None:
            return 0
        oldest = self.clock() - OUTAGE_TOLERANCE_MS
        rows = [r for r in self.state.alerts_active() if r.last_evaluated_at_ms >= oldest]
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
        self._resolutions_hand_over()
        if restored:
            logger.info("restored %d pending/firing alerts from %s", restored, self.state.path)
        return restored

    def _resolutions_hand_over(self) -> None:
        """The alerts resolved in the last 15 minutes, handed to the notifier as the engine
        would have handed them: a kill between the evaluation that resolved an alert and the
        notifier's flush would otherwise lose its resolved notice. The notification log says
        who was told it fired; a resolution sent already is not sent again."""
        if self.notifier is None or self.state is None:
            return
        since = self.clock() - RESOLVED_RETENTION_MS
        self.notifier.put(
            [
                NotifiedAlert(
                    labels=row.labels,
                    annotations=row.annotations,
                    starts_at_ms=row.fired_at_ms or row.active_at_ms or row.resolved_at_ms,
                    ends_at_ms=row.resolved_at_ms,
                    status=RESOLVED,
                    value=row.last_value,
                )
                for row in self.state.alerts_resolved_since(since_ms=since)
            ]
        )

    def _retire_orphans(self) -> None:
        if self.state is None:
            return
        keep = {
            (group.name, rule.name)
            for group in self.groups
            for rule in group.rules
            if isinstance(rule, AlertingRule)
        }
        self.state.alerts_retire(keep=keep, evaluated_at_ms=self.clock())

    # -- loops ----------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.restore()
        except sqlite3.Error:
            # Scraping, rules and the API do not need it: run without the stored state
            # rather than not at all.
            path = self.state.path if self.state else None
            logger.exception("could not restore alert state from %s; starting afresh", path)
        if self.notifier is not None:
            self.notifier.start()
        if self.escalation is not None:
            self.escalation.start()
        self.scraper.start()
        if self.prober is not None:
            self.prober.start()
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
        # Let the first scrapes land before the first evaluation, so a restored alert is judged
        # on fresh samples too (the store outlives a restart only when it is on disk: `monitor
        # once` and tests keep theirs in memory).
        started = time.monotonic()
        budget = self.scraper.first_scrapes_budget_s()
        while not self.scraper.first_scrapes_done() and time.monotonic() - started < budget:
            if stop.wait(0.05):
                return
        next_at = max(time.monotonic(), started + min(interval, 1.0))
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.evaluate(group, self.clock())
            except Exception:  # the loop must survive a bug
                logger.exception("evaluation of group %s failed", group.name)
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                # Fell behind: the iterations whose time passed are missed (exported as
                # prometheus_rule_group_iterations_missed_total).
                group.iterations_missed_total += int((now - next_at) // interval) + 1
                next_at = now + interval

    def _gc_loop(self, stop: threading.Event) -> None:
        while not stop.wait(GC_INTERVAL_S):
            self.gc(self.clock())

    def gc(self, now_ms: int) -> None:
        """Drop what is past its retention: series (MONITOR_RETENTION), recorded alert
        transitions (MONITOR_STATE_RETENTION) and expired silences (120 h, as Alertmanager)."""
        removed = self.store.gc(now_ms)
        if removed:
            logger.debug("dropped %d series past retention", removed)
        try:
            self.notifier_state.silences.gc()
        except sqlite3.Error:
            logger.exception("could not prune expired silences")
        if self.state is None:
            return
        try:
            pruned = self.state.alert_transitions_prune(
                before_ms=now_ms - self.settings.state_retention_ms
            )
        except sqlite3.Error:  # a busy or failing state file: the next round tries again
            logger.exception("pruning alert transitions in %s failed", self.state.path)
            return
        if pruned:
            logger.info("pruned %d alert transitions past MONITOR_STATE_RETENTION", pruned)

    def _checks_load(self, config: MonitorConfig | None = None) -> list[CheckConfig]:
        """SYNTHETIC_CONFIG's checks, relative URLs on the shop the app job scrapes."""
        assert self.settings.synthetic_config is not None
        base_url = app_base_url(config or self.config)
        return checks_load(self.settings.synthetic_config, base_url=base_url)

    def _config_state(self, errors: list[str]) -> None:
        self.config_errors = list(errors)
        self.last_reload_successful = not errors
        if not errors:
            self.last_reload_success_time = time.time()

    @property
    def notify_errors(self) -> list[str]:
        """The problems of the last load of NOTIFY_CONFIG ([]: it loaded)."""
        return self.notifier_state.config.errors

    def notifier_reload(self) -> list[str]:
        """Read NOTIFY_CONFIG again; when it loads, the pipeline and the API switch to it
        together, otherwise both keep the running configuration. Returns the problems."""
        loaded = self.notifier_state.config
        errors = loaded.load()
        if not errors and self.notifier is not None:
            self.notifier.apply_config(loaded.config)
        if self.escalation is not None:  # its own file: a bad one keeps the last good, logged
            self.escalation.reload()
        return errors

    def reload(self) -> list[str]:
        """Switch to the configuration on disk; on any error keep the running one. The
        notifier's file is reloaded too, on its own (`notifier_reload`): a problem there keeps
        the notifier's running configuration and does not hold up the rules."""
        self.notifier_reload()
        checks: list[CheckConfig] | None = None
        try:
            config, groups = config_and_rules_load(
                self.config_path, app_target=self.settings.app_target
            )
            if self.prober is not None:
                checks = self._checks_load(config)
        except ConfigError as exc:
            self._config_state(exc.errors)
            logger.error(
                "reload failed, keeping the running configuration: %s",
                "; ".join(exc.errors),
                extra={"config_errors": exc.errors},
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
        if checks is not None and self.prober is not None:
            self.prober.update(checks)
        self._config_state([])
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
        try:
            self._retire_orphans()
        except sqlite3.Error:
            logger.exception("could not retire the alerts of removed rules")

    def stop(self) -> None:
        self.ready = False
        self._stop_loops()
        self.scraper.close()
        if self.prober is not None:
            self.prober.close()
        if self.escalation is not None:
            self.escalation.stop()
        if self.notifier is not None:
            self.notifier.stop()
        if self.state is not None:
            self.state.close()
        self.store.close()

    # -- what the API reads (its JSON is monitoring.monitor.api_json's) ----------------------
    @property
    def evaluation_lock(self) -> threading.RLock:
        """Held while a group evaluates or a reload switches groups: read rule and alert
        state under it, so the API never sees a group half-way through an evaluation."""
        return self._lock

    @functools.cached_property
    def metrics_registry(self) -> CollectorRegistry:
        """The monitor's own metrics (``self_metrics``), served at ``/metrics``."""
        return self_metrics.registry(self)

    def scrape_itself(self, address: str) -> None:
        """Scrape the monitor's own API at ``address`` (host:port) as the ``prometheus`` job,
        with the API's token (see ``scrape.with_self_scrape``)."""
        self.scraper.scrape_itself(address, self.settings.api_token)
