"""The checked-in dashboards as the tests read them: every panel's targets, with the template
variables at their "All" value, and the metric names each expression reads."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from monitoring.rules.expr import MatSel, Sel, Subquery, children, compile_expr

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
# What Grafana sends for a variable at "All" (the variables' allValue).
ALL = {"$job": ".*", "$instance": ".*"}


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str  # variables substituted
    instant: bool

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.expr}"


def documents() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def substitute(expr: str, values: dict[str, str] = ALL) -> str:
    for variable, value in values.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown variable in {expr}"
    return expr


def queries(values: dict[str, dict[str, str]] | None = None) -> list[Query]:
    """Every target of every dashboard, the variables at "All", or at `values[dashboard file]`
    for the dashboards `values` names (only those are returned then)."""
    found = []
    for name, document in documents().items():
        if values is not None and name not in values:
            continue
        for panel in document["panels"]:
            for target in panel["targets"]:
                found.append(
                    Query(
                        name,
                        panel["title"],
                        substitute(target["expr"], ALL if values is None else values[name]),
                        bool(target.get("instant")),
                    )
                )
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names the expression's selectors read (through the monitor's own parser)."""
    names, stack = set(), [compile_expr(expr)]
    while stack:
        node = stack.pop()
        if isinstance(node, MatSel):
            node = node.sel
        if isinstance(node, Sel):
            names.update(m.value for m in node.matchers if m.name == "__name__" and m.op == "=")
        elif isinstance(node, Subquery):
            stack.append(node.expr)
        else:
            stack.extend(children(node))
    return names


# Series written by the scraper and rule evaluation themselves (Prometheus' and the monitor's).
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def declared_names() -> set[str]:
    """Every quoted metric-like name in the Python sources that export metrics, and every
    recorded series of deploy/prometheus (a renamed metric leaves its old name out of both)."""
    text = "\n".join(
        path.read_text()
        for package in ("monitoring", "shop", "maintenance", "config")
        for path in (ROOT / package).rglob("*.py")
        if "grafana"
        not in path.relative_to(ROOT).parts  # the dashboards' own expressions prove nothing
    )
    names = set(re.findall(r"""["']([a-z_][a-z0-9_]*)["']""", text))
    # Counters the system collector names as "<prefix>_<key>" (disk_read_bytes_total).
    prefixes = re.findall(r"""_prefixed_counters\([^)]*?,\s*"([a-z_]+)",""", text)
    names |= {
        f"{prefix}_{name}" for prefix in prefixes for name in names if name.endswith("_total")
    }
    for rules in (ROOT / "deploy" / "prometheus").glob("*_rules.yml"):
        names.update(
            re.findall(r"^\s*- record: ([a-zA-Z_:][a-zA-Z0-9_:]*)", rules.read_text(), re.M)
        )
    return names


def unknown_names(exprs: list[str], declared: set[str]) -> set[str]:
    unknown = set()
    for expr in exprs:
        for name in metric_names(expr) - SYNTHETIC:
            candidates = {name} | {name.removesuffix(s) for s in SUFFIXES if name.endswith(s)}
            # A counter declared without `_total` is exported with it; a histogram's
            # `_bucket`/`_count` come from its base name.
            if not candidates & declared:
                unknown.add(name)
    return unknown
