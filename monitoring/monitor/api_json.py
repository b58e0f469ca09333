"""Every Prometheus-API JSON shape the monitor answers with, in one place.

The layers below keep data (values, rule health and timestamps, alert state, target state);
this module turns it into what Prometheus 2.42's ``/api/v1`` prints, so a client written for
Prometheus (Grafana, amtool-like scripts, a notifier) reads ours unchanged:

- ``success_body(data)``, ``error_body(message, error_type)``: the envelope.
- ``result_json_at(result, t_ms)``: ``data`` of ``/api/v1/query`` and ``query_range``
  (timestamps in float seconds, values as Go's ``'f'`` strings); ``result_json_text_at`` the
  same already encoded (a range query's bulk, written directly).
- ``alert_json(alert)``: an alert in ``/api/v1/alerts`` and inside ``/api/v1/rules``; its
  value as Go's ``%e`` (``9.5e+01``), as Prometheus prints it in both.
- ``rule_json(rule)``, ``group_json(group)``, ``rules_json(groups, rule_type)``,
  ``alerts_json(groups)``: ``/api/v1/rules`` and ``/api/v1/alerts``.
- ``target_json(state)``: one of ``/api/v1/targets``' ``activeTargets``;
  ``check_target_json(state)`` a synthetic check as one (the pool ``synthetic``).
- ``BUILDINFO``: ``/api/v1/status/buildinfo``.
"""

from __future__ import annotations

import json
import operator
from typing import Any

from monitoring.monitor.scrape import TargetState
from monitoring.rules.alerting import Alert, AlertingRule, Rule, rule_state
from monitoring.rules.gofmt import (
    format_go_duration,
    format_go_e,
    format_value,
    format_values,
    rfc3339,
    rfc3339_or_zero,
)
from monitoring.rules.group import RuleGroup
from monitoring.rules.values import Matrix, Scalar, String, Value, Vector
from monitoring.synthetic.prober import JOB as SYNTHETIC_JOB
from monitoring.synthetic.prober import CheckState

__all__ = [
    "BUILDINFO",
    "alert_json",
    "alerts_json",
    "check_target_json",
    "error_body",
    "group_json",
    "metadata_json",
    "result_json_at",
    "result_json_text_at",
    "rule_json",
    "rules_json",
    "success_body",
    "target_json",
]


def success_body(data: Any) -> bytes:
    return _ENCODER.encode({"status": "success", "data": data}).encode()


def error_body(message: str, error_type: str = "bad_data") -> bytes:
    body = {"status": "error", "errorType": error_type, "error": message}
    return _ENCODER.encode(body).encode()


# ---------------------------------------------------------------------------------- queries


def _seconds(t_ms: int) -> int | float:
    # Prometheus writes whole seconds without a fraction (1435781451, 1435781451.781).
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def _point(t_ms: int, v: float) -> list:
    return [_seconds(t_ms), format_value(v)]


def _points(points: list[tuple[int, float]]) -> list[list]:
    # The bulk of a query_range answer: one list per step, kept to plain loops.
    fmt = format_value
    return [[t // 1000 if t % 1000 == 0 else t / 1000, fmt(v)] for t, v in points]


# The API's encoder settings (compact, no NaN): JSON numbers and label sets are written by it.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def result_json_text_at(result: Value, t_ms: int) -> str:
    """``result_json_at`` already encoded: the same text as encoding it with ``_ENCODER``
    (``json.dumps(..., separators=(",", ":"), allow_nan=False)``).

    A matrix is written directly: a query_range answer is nearly all points, and joining one
    string per point costs a fraction of building a list per point for the encoder."""
    if not isinstance(result, Matrix):
        return _ENCODER.encode(result_json_at(result, t_ms))
    heads: dict[int, str] = {}  # t_ms -> '[<seconds>,"', shared by the series of a range query
    parts = []
    for s in result.series:
        values = ""
        if s.points:
            ts, vs = zip(*s.points, strict=True)
            for t in set(ts).difference(heads):
                heads[t] = "[" + _ENCODER.encode(_seconds(t)) + ',"'
            values = '"],'.join(map(operator.add, map(heads.__getitem__, ts), format_values(vs)))
            values += '"]'
        parts.append('{"metric":' + _ENCODER.encode(dict(s.labels)) + ',"values":[' + values + "]}")
    return '{"resultType":"matrix","result":[' + ",".join(parts) + "]}"


def result_json_at(result: Value, t_ms: int) -> dict:
    """The ``data`` object of ``/api/v1/query`` (instant) or ``/api/v1/query_range``."""
    if isinstance(result, Scalar):
        return {"resultType": "scalar", "result": _point(t_ms, result.value)}
    if isinstance(result, String):
        return {"resultType": "string", "result": [_seconds(t_ms), result.value]}
    if isinstance(result, Vector):
        return {
            "resultType": "vector",
            "result": [
                {"metric": dict(s.labels), "value": _point(t_ms, s.value)} for s in result.samples
            ],
        }
    return {
        "resultType": "matrix",
        "result": [{"metric": dict(s.labels), "values": _points(s.points)} for s in result.series],
    }


# ------------------------------------------------------------------------- rules and alerts


def alert_json(alert: Alert) -> dict:
    """Prometheus prints an alert's value with Go's %e ('e', -1) in /api/v1/alerts and in the
    alerts of /api/v1/rules alike."""
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state,
        "activeAt": rfc3339(alert.active_at_ms),
        "value": format_go_e(alert.value),
    }


def rule_json(rule: Rule) -> dict:
    out = {
        "name": rule.name,
        "query": rule.expr,
        "labels": dict(rule.labels),
        "health": rule.health,
        "lastError": rule.last_error or "",
        "evaluationTime": rule.eval_duration_s,
        "lastEvaluation": rfc3339_or_zero(rule.last_eval_ms),
        "type": rule.kind,
    }
    if isinstance(rule, AlertingRule):
        active = rule.active_alerts()
        out.update(
            {
                "duration": rule.for_ms / 1000,
                "keepFiringFor": rule.keep_firing_for_ms / 1000,
                "annotations": dict(rule.annotations),
                "alerts": [alert_json(a) for a in active],
                "state": rule_state(active),
            }
        )
    return out


def group_json(group: RuleGroup) -> dict:
    return {
        "name": group.name,
        "file": group.file,
        "interval": group.interval_s,
        "limit": group.limit,
        "rules": [rule_json(r) for r in group.rules],
        "evaluationTime": group.eval_duration_s,
        "lastEvaluation": rfc3339_or_zero(group.last_eval_ms),
    }


def rules_json(groups: list[RuleGroup], rule_type: str | None = None) -> list[dict]:
    """``rule_type``: "alert" or "record" keeps only those rules (groups stay, as Prometheus)."""
    kind = {"alert": "alerting", "record": "recording"}.get(rule_type or "")
    out = []
    for group in groups:
        data = group_json(group)
        if kind:
            data["rules"] = [r for r in data["rules"] if r["type"] == kind]
        out.append(data)
    return out


def alerts_json(groups: list[RuleGroup]) -> list[dict]:
    return [alert_json(a) for g in groups for a in g.active_alerts()]


# ---------------------------------------------------------------------------------- targets


def target_json(state: TargetState) -> dict:
    job = state.job
    last_scrape = state.last_scrape
    return {
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
        "lastScrape": rfc3339_or_zero(
            None if last_scrape is None else round(last_scrape.timestamp() * 1000)
        ),
        "lastScrapeDuration": state.last_duration_s,
        "health": state.health,
        "scrapeInterval": format_go_duration(job.interval_ms),
        "scrapeTimeout": format_go_duration(job.timeout_ms),
    }


def check_target_json(state: CheckState) -> dict:
    """A synthetic check as a target, where blackbox_exporter's probes appear in Prometheus:
    its labels are the series' (job, instance: the URL, check), its health the check's
    declared state (retries applied, as `probe_success`), its last error and time the last
    attempt's, even while retries have not yet decided."""
    check = state.check
    with state.lock:
        last, last_at, up = state.last, state.last_at_ms, state.up
    interval = format_go_duration(round(check.interval_s * 1000))
    labels = {"check": check.name, "instance": check.url, "job": SYNTHETIC_JOB}
    return {
        "discoveredLabels": {"__address__": check.url, "job": SYNTHETIC_JOB, "check": check.name},
        "labels": labels,
        "scrapePool": SYNTHETIC_JOB,
        "scrapeUrl": check.url,
        "globalUrl": check.url,
        "lastError": last.error if last is not None else "",
        "lastScrape": rfc3339_or_zero(last_at),
        "lastScrapeDuration": last.duration_s if last is not None else 0.0,
        "health": "unknown" if last is None else "up" if up else "down",
        "scrapeInterval": interval,
        "scrapeTimeout": format_go_duration(check.timeout_ms),
    }


# Grafana reads this to pick Prometheus features; we implement 2.42's semantics.
BUILDINFO = {
    "version": "2.42.0",
    "revision": "pasargad-monitor",
    "branch": "",
    "buildUser": "",
    "buildDate": "",
    "goVersion": "",
}


def runtimeinfo_json(
    *,
    started_at: float,
    cwd: str,
    reload_success: bool,
    last_config_time: float | None,
    config_errors: list[str],
) -> dict:
    """/api/v1/status/runtimeinfo: Prometheus' fields that apply to a Python process, plus
    `configErrors` (ours): the configuration's problems as last read, `file:line: problem`."""
    return {
        "startTime": rfc3339(round(started_at * 1000)),
        "CWD": cwd,
        "reloadConfigSuccess": reload_success,
        "lastConfigTime": rfc3339_or_zero(
            None if last_config_time is None else round(last_config_time * 1000)
        ),
        "configErrors": list(config_errors),
    }


def metadata_json(targets: list[TargetState]) -> dict[str, list[dict]]:
    """``/api/v1/metadata``: each metric's distinct metadata entries over all targets."""
    merged: dict[str, list[dict]] = {}
    for state in targets:
        for name, entry in state.metadata.items():
            if entry not in merged.setdefault(name, []):
                merged[name].append(entry)
    return dict(sorted(merged.items()))
