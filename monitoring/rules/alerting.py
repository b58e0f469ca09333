"""Recording and alerting rules, evaluated like Prometheus' ``rules`` package (2.42).

Public surface (stable):

- ``RecordingRule(name, expr, labels=None)``; ``eval(t_ms, engine) -> list[Sample]``: the
  query's result renamed to ``name`` with ``labels`` applied (a scalar becomes one sample).
- ``AlertingRule(name, expr, for_s=0, keep_firing_for_s=0, labels=None, annotations=None,
  external_labels=None, external_url="")``; ``eval(t_ms, engine, limit=0) -> list[Sample]``
  returns the ``ALERTS``/``ALERTS_FOR_STATE`` samples and moves each alert through
  inactive -> pending -> firing; an alert no longer returned is resolved (``resolved_at_ms``)
  and kept ``RESOLVED_RETENTION_MS`` (15 min) so the resolution can be sent; ``keep_firing_for``
  holds a firing alert that lost its result.  Labels and annotations are Go templates with
  ``$labels``, ``$value``, ``$externalLabels``, ``$externalURL`` (see ``template``).
  - ``alerts() -> list[Alert]``: every tracked alert (pending, firing, and recently resolved).
  - ``active_alerts() -> list[Alert]``: pending and firing only.
  - ``state_snapshot() -> list[dict]`` (JSON-serialisable) and ``restore(snapshot) -> int``:
    persist and bring back alert state across a restart (pending alerts keep their
    ``active_at``, so ``for`` is not started over; firing stays firing).
  - ``copy_state_from(other)``: keep alert state across a reload of an unchanged rule.
- Both rules record ``health`` ("unknown", "ok", "err"), ``last_error``, ``last_eval_ms``,
  ``eval_duration_s``; ``rule_state(alerts)`` is an alerting rule's state as the API shows it
  (the JSON itself is ``monitoring.monitor.api_json``'s).
- ``Alert``: ``labels`` (Labels incl. ``alertname``), ``annotations`` (dict), ``state``
  ("pending"/"firing"/"inactive"), ``value``, ``active_at_ms``, ``fired_at_ms``,
  ``resolved_at_ms``, ``keep_firing_since_ms``, ``fingerprint``.

Rules never touch storage: ``group.RuleGroup`` appends their samples to the store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache

from monitoring.rules.engine import Engine
from monitoring.rules.errors import QueryError
from monitoring.rules.expr import Node, as_rule_query, compile_expr
from monitoring.rules.template import expand_alert_template
from monitoring.rules.values import Sample, Scalar, Vector
from monitoring.tsdb.store import Labels, labels_from

RESOLVED_RETENTION_MS = 15 * 60 * 1000
INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"


_FNV64_OFFSET, _FNV64_PRIME, _U64 = 14695981039346656037, 1099511628211, 2**64 - 1


def fingerprint(labels: Labels | Mapping[str, str]) -> str:
    """The alert's one id: Prometheus' `model.LabelSet.Fingerprint` (what Alertmanager shows as
    an alert's fingerprint), 16 hex digits: FNV-1a 64 over the label pairs sorted by name, each
    name and value followed by the 0xff byte that cannot occur in UTF-8."""
    return _fingerprint(tuple(sorted(labels.items() if isinstance(labels, Mapping) else labels)))


@lru_cache(maxsize=65536)
def _fingerprint(pairs: Labels) -> str:
    # Cached: an alert's labels are the same every evaluation, and the loop is pure Python.
    digest = _FNV64_OFFSET
    for name, value in pairs:
        for byte in b"".join((name.encode(), b"\xff", value.encode(), b"\xff")):
            digest = ((digest ^ byte) * _FNV64_PRIME) & _U64
    return f"{digest:016x}"


@dataclass
class Alert:
    labels: Labels
    annotations: dict[str, str]
    state: str
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    keep_firing_since_ms: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


def query_vector(engine: Engine, node: Node, t_ms: int) -> list[Sample]:
    """Prometheus' EngineQueryFunc: a scalar result becomes one sample without labels."""
    result = engine.instant(node, t_ms)
    if isinstance(result, Vector):
        return result.samples
    if isinstance(result, Scalar):
        return [Sample((), result.value)]
    raise QueryError("rule result is not a vector or scalar")


class _Rule:
    kind = ""

    def __init__(self, name: str, expr: str, labels: dict[str, str] | None = None) -> None:
        self.name = name
        self.expr = expr
        self.node = as_rule_query(compile_expr(expr))
        self.labels = dict(labels or {})
        self.health = "unknown"
        self.last_error: str | None = None
        self.last_eval_ms: int | None = None
        self.eval_duration_s = 0.0

    def record_eval(self, t_ms: int, started: float, error: Exception | None) -> None:
        self.last_eval_ms = t_ms
        self.eval_duration_s = time.perf_counter() - started
        self.health = "err" if error else "ok"
        self.last_error = str(error) if error else None

    def same_definition(self, other: _Rule) -> bool:
        return (
            type(self) is type(other)
            and self.name == other.name
            and self.expr == other.expr
            and self.labels == other.labels
        )


class RecordingRule(_Rule):
    kind = "recording"

    def eval(self, t_ms: int, engine: Engine, limit: int = 0) -> list[Sample]:
        out = []
        for s in query_vector(engine, self.node, t_ms):
            d = dict(s.labels)
            d["__name__"] = self.name
            d.update(self.labels)
            out.append(Sample(labels_from(d), s.value))
        if len({s.labels for s in out}) != len(out):
            raise QueryError(
                "vector contains metrics with the same labelset after applying rule labels"
            )
        if limit > 0 and len(out) > limit:
            raise QueryError(f"exceeded limit of {limit} with {len(out)} series")
        return out


class AlertingRule(_Rule):
    kind = "alerting"

    def __init__(
        self,
        name: str,
        expr: str,
        for_s: float = 0,
        keep_firing_for_s: float = 0,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        external_labels: dict[str, str] | None = None,
        external_url: str = "",
    ) -> None:
        super().__init__(name, expr, labels)
        self.for_ms = int(for_s * 1000)
        self.keep_firing_for_ms = int(keep_firing_for_s * 1000)
        self.annotations = dict(annotations or {})
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.active: dict[Labels, Alert] = {}

    def same_definition(self, other: _Rule) -> bool:
        return (
            super().same_definition(other)
            and isinstance(other, AlertingRule)
            and self.for_ms == other.for_ms
            and self.keep_firing_for_ms == other.keep_firing_for_ms
            and self.annotations == other.annotations
        )

    def _expand(self, text: str, labels: dict[str, str], value: float) -> str:
        return expand_alert_template(
            text,
            labels=labels,
            value=value,
            external_labels=self.external_labels,
            external_url=self.external_url,
            name=f"__alert_{self.name}",
        )

    def eval(self, t_ms: int, engine: Engine, limit: int = 0) -> list[Sample]:
        results = query_vector(engine, self.node, t_ms)
        fresh: dict[Labels, Alert] = {}
        for s in results:
            data = dict(s.labels)
            d = dict(data)
            d.pop("__name__", None)
            for key, text in self.labels.items():
                d[key] = self._expand(text, data, s.value) if "{{" in text else text
            d["alertname"] = self.name
            annotations = {
                k: self._expand(v, data, s.value) if "{{" in v else v
                for k, v in self.annotations.items()
            }
            labels = labels_from(d)
            if labels in fresh:
                raise QueryError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            fresh[labels] = Alert(labels, annotations, PENDING, s.value, t_ms)
        for labels, alert in fresh.items():
            known = self.active.get(labels)
            if known is not None and known.state != INACTIVE:
                known.value = alert.value
                known.annotations = alert.annotations
            else:
                self.active[labels] = alert
        out: list[Sample] = []
        active_count = 0
        for labels, alert in list(self.active.items()):
            if labels not in fresh:
                keep_firing = False
                if alert.state == FIRING and self.keep_firing_for_ms > 0:
                    if alert.keep_firing_since_ms is None:
                        alert.keep_firing_since_ms = t_ms
                    keep_firing = t_ms - alert.keep_firing_since_ms < self.keep_firing_for_ms
                if alert.state == PENDING or (
                    alert.resolved_at_ms is not None
                    and t_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS
                ):
                    del self.active[labels]
                if alert.state != INACTIVE and not keep_firing:
                    alert.state = INACTIVE
                    alert.resolved_at_ms = t_ms
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since_ms = None
            active_count += 1
            if alert.state == PENDING and t_ms - alert.active_at_ms >= self.for_ms:
                alert.state = FIRING
                alert.fired_at_ms = t_ms
            out.append(Sample(_with(alert.labels, "ALERTS", alert.state), 1.0))
            out.append(Sample(_with(alert.labels, "ALERTS_FOR_STATE"), alert.active_at_ms // 1000))
        if limit > 0 and active_count > limit:
            self.active = {}
            raise QueryError(f"exceeded limit of {limit} with {active_count} alerts")
        return out

    def alerts(self) -> list[Alert]:
        return sorted(self.active.values(), key=lambda a: a.labels)

    def active_alerts(self) -> list[Alert]:
        return [a for a in self.alerts() if a.state in (PENDING, FIRING)]

    def state_snapshot(self) -> list[dict]:
        out = []
        for alert in self.alerts():
            item = asdict(alert)
            item["labels"] = [list(p) for p in alert.labels]
            out.append(item)
        return out

    def restore(self, snapshot: list[dict]) -> int:
        restored = 0
        known = set(Alert.__dataclass_fields__)
        for item in snapshot:
            # Tolerate snapshots written by another version: unknown keys are ignored.
            data = {k: v for k, v in item.items() if k in known}
            data["labels"] = tuple(tuple(p) for p in data["labels"])
            data["annotations"] = dict(data.get("annotations") or {})
            alert = Alert(**data)
            if alert.state not in (PENDING, FIRING, INACTIVE):
                continue
            self.active[alert.labels] = alert
            restored += 1
        return restored

    def copy_state_from(self, other: AlertingRule) -> None:
        self.active = other.active
        self.health, self.last_error = other.health, other.last_error
        self.last_eval_ms, self.eval_duration_s = other.last_eval_ms, other.eval_duration_s


def rule_state(alerts: list[Alert]) -> str:
    """A rule's state in the API: its most advanced alert's, inactive without one."""
    states = {a.state for a in alerts}
    if FIRING in states:
        return FIRING
    if PENDING in states:
        return PENDING
    return INACTIVE


@lru_cache(maxsize=65536)
def _with(labels: Labels, name: str, state: str = "") -> Labels:
    """An alert's ALERTS / ALERTS_FOR_STATE label set (cached: the same every evaluation)."""
    d = dict(labels)
    d["__name__"] = name
    if state:
        d["alertstate"] = state
    return labels_from(d)


Rule = RecordingRule | AlertingRule
