"""The catalogue (catalogue.py) as Grafana dashboard JSON, built with grafana-foundation-sdk.

`render(dashboard)` is deterministic (sorted keys, fixed ids and layout), so the JSON checked in
under deploy/grafana/dashboards/ is exactly what `python -m monitoring.grafana` writes, and a
test compares the two.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    GridPos,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from monitoring.grafana.catalogue import PROMETHEUS_UID, Dashboard, Panel, dashboards
from monitoring.thresholds import Thresholds, thresholds_load

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"
THRESHOLDS = ROOT / "deploy" / "prometheus" / "thresholds.yml"

PROMETHEUS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
HEIGHT = {"stat": 5, "timeseries": 8}
REFRESH = "30s"  # the app's scrape interval: refreshing faster shows nothing new


def _variable(name: str, label: str, query: str) -> dash.QueryVariable:
    """A multi-value variable from label values, "All" by default (`.*`, which also matches
    the recorded aggregates' missing label)."""
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def _panel(panel: Panel, panel_id: int, grid: GridPos):
    builder = stat.Panel() if panel.kind == "stat" else timeseries.Panel()
    builder = (
        builder.id(panel_id)
        .title(panel.title)
        .datasource(PROMETHEUS)
        .grid_pos(grid)
        .unit(panel.unit)
        .thresholds(
            dash.ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps(
                [Threshold(value=None, color="green")]
                + [Threshold(value=float(v), color=c) for v, c in panel.steps]
            )
        )
    )
    if panel.description:
        builder = builder.description(panel.description)
    if panel.max is not None:
        builder = builder.min(0).max(panel.max)
    for index, target in enumerate(panel.targets):
        query = (
            prometheus.Dataquery()
            .expr(target.expr)
            .legend_format(target.legend)
            .ref_id(chr(ord("A") + index))
            .datasource(PROMETHEUS)
        )
        builder = builder.with_target(query.instant() if panel.kind == "stat" else query.range())
    if panel.kind == "stat":
        builder = builder.reduce_options(
            common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
        ).graph_mode(common.BigValueGraphMode.AREA)
    elif panel.steps:
        builder = builder.thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return builder


def _layout(panels: tuple[Panel, ...]) -> list[GridPos]:
    """Left to right, wrapping at Grafana's 24 columns; a row is as tall as its tallest panel."""
    positions, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        height = HEIGHT[panel.kind]
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        positions.append(GridPos(h=height, w=panel.width, x=x, y=y))
        x += panel.width
        row_height = max(row_height, height)
    return positions


def build(dashboard: Dashboard) -> dict:
    builder = (
        dash.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags(list(dashboard.tags))
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh(REFRESH)
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(_variable("job", "Job", "label_values(up, job)"))
        .with_variable(_variable("instance", "Instance", 'label_values(up{job=~"$job"}, instance)'))
        .link(
            dash.DashboardLink("Pasargad dashboards")
            .type("dashboards")
            .tags(["pasargad"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for panel_id, (panel, grid) in enumerate(
        zip(dashboard.panels, _layout(dashboard.panels), strict=True), start=1
    ):
        builder = builder.with_panel(_panel(panel, panel_id, grid))
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def render(dashboard: Dashboard) -> str:
    return json.dumps(build(dashboard), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered(thresholds: Thresholds | None = None) -> dict[str, str]:
    """File name → JSON text of every dashboard, from thresholds.yml unless given."""
    th = thresholds if thresholds is not None else thresholds_load(THRESHOLDS)
    return {d.filename: render(d) for d in dashboards(th)}


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Write every dashboard and remove JSON files no dashboard produces any more."""
    directory.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def differences(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Files that differ from what would be generated (missing, changed, or left over)."""
    files = rendered()
    found = {p.name for p in directory.glob("*.json")}
    problems = [f"{name}: not generated by any dashboard" for name in sorted(found - set(files))]
    for name, text in files.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text() != text:
            problems.append(f"{name}: differs from the generated dashboard")
    return problems
