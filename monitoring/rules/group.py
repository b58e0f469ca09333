"""Rule groups: rules evaluated in order on an interval, like Prometheus' ``rules.Group``.

Public surface (stable):

- ``RuleGroup(name, file, interval_s, rules, limit=0)``
  - ``eval(t_ms, engine, store) -> list[Alert]``: evaluates every rule at ``t_ms`` in order.
    Each rule's samples (recording output, ``ALERTS``, ``ALERTS_FOR_STATE``) are appended to
    the store at once, so later rules see earlier rules' output; series a rule stopped
    producing get a staleness marker.  A failing rule records health ``err`` and its error;
    the group carries on.  Returns the pending and firing alerts of the group.
  - ``alerts() -> list[Alert]``: every tracked alert incl. recently resolved (to notify).
  - ``copy_state_from(old)``: after a reload, rules with an unchanged definition keep their
    alert state (Prometheus' ``CopyState``).
  - ``mark_stale(store, t_ms, from_index=0)``: for a group a reload removed (or shortened):
    staleness markers for the series its rules (from that position on) wrote.
  - ``state_snapshot() -> dict`` / ``restore(snapshot) -> int``: alert state of every
    alerting rule, keyed by rule name and position.
  - ``key``: ``(file, name)``; ``last_eval_ms``, ``eval_duration_s``; the counters
    ``evaluations_total``, ``evaluation_failures_total`` (rules that raised) and
    ``iterations_missed_total`` (set by the loop that schedules the group).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from monitoring.rules.alerting import Alert, AlertingRule, Rule
from monitoring.rules.engine import Engine
from monitoring.tsdb.store import SampleStore


@dataclass(eq=False)
class RuleGroup:
    name: str
    file: str
    interval_s: float
    rules: list[Rule]
    limit: int = 0
    last_eval_ms: int | None = field(default=None, init=False)
    eval_duration_s: float = field(default=0.0, init=False)
    # Counters the monitor exports under Prometheus' names (prometheus_rule_evaluations_total,
    # …_evaluation_failures_total, …_group_iterations_missed_total); they survive a reload
    # that keeps the group, as Prometheus' metrics keyed by group do.
    evaluations_total: int = field(default=0, init=False)
    evaluation_failures_total: int = field(default=0, init=False)
    iterations_missed_total: int = field(default=0, init=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.file, self.name)

    def _source(self, index: int) -> str:
        return f"rule:{self.file}:{self.name}:{index}"

    def eval(self, t_ms: int, engine: Engine, store: SampleStore) -> list[Alert]:
        started = time.perf_counter()
        for i, rule in enumerate(self.rules):
            rule_started = time.perf_counter()
            self.evaluations_total += 1
            try:
                samples = rule.eval(t_ms, engine, self.limit)
            except Exception as exc:  # one bad rule must not stop the group
                self.evaluation_failures_total += 1
                rule.record_eval(t_ms, rule_started, exc)
                continue
            rule.record_eval(t_ms, rule_started, None)
            store.append_scrape(self._source(i), [(s.labels, s.value) for s in samples], t_ms)
        self.last_eval_ms = t_ms
        self.eval_duration_s = time.perf_counter() - started
        return self.active_alerts()

    def mark_stale(self, store: SampleStore, t_ms: int, from_index: int = 0) -> None:
        """The group (or its rules from `from_index` on) was removed by a reload: end those
        rules' series now, as Prometheus does, instead of letting them linger for the lookback.
        (Rules that remain write under their position, and a position's next evaluation ends
        whatever the rule before it wrote there.)"""
        for i in range(from_index, len(self.rules)):
            store.mark_source_stale(self._source(i), t_ms)

    def alerting_rules(self) -> list[AlertingRule]:
        return [r for r in self.rules if isinstance(r, AlertingRule)]

    def alerts(self) -> list[Alert]:
        return [a for r in self.alerting_rules() for a in r.alerts()]

    def active_alerts(self) -> list[Alert]:
        return [a for r in self.alerting_rules() for a in r.active_alerts()]

    def copy_state_from(self, old: RuleGroup) -> None:
        by_name: dict[str, list[Rule]] = {}
        for rule in old.rules:
            by_name.setdefault(rule.name, []).append(rule)
        for rule in self.rules:
            candidates = by_name.get(rule.name) or []
            if not candidates:
                continue
            previous = candidates.pop(0)
            if isinstance(rule, AlertingRule) and rule.same_definition(previous):
                rule.copy_state_from(previous)
        self.last_eval_ms = old.last_eval_ms
        self.evaluations_total = old.evaluations_total
        self.evaluation_failures_total = old.evaluation_failures_total
        self.iterations_missed_total = old.iterations_missed_total

    def state_snapshot(self) -> dict:
        return {
            f"{i}:{rule.name}": rule.state_snapshot()
            for i, rule in enumerate(self.rules)
            if isinstance(rule, AlertingRule)
        }

    def restore(self, snapshot: dict) -> int:
        restored = 0
        for i, rule in enumerate(self.rules):
            if isinstance(rule, AlertingRule) and f"{i}:{rule.name}" in snapshot:
                restored += rule.restore(snapshot[f"{i}:{rule.name}"])
        return restored
