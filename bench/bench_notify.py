"""Routing, grouping and inhibition of 10,000 active alerts, one notifier cycle.

The shipped `deploy/alertmanager/alertmanager.yml`; alerts shaped like the shipped rules'
(alertname, severity, team) on many instances, a tenth of them critical (so the
critical-suppresses-warning rule has work) and a few targets down (so TargetDown inhibits
their alerts). A cycle: route every alert (`Route.match`), take its group key on every route
it reaches, index the firing alerts for inhibition once and check every alert. Goal (issue
10): under 100 ms a cycle (median; the router's memos of match results and group keys are
warm after the first cycle, as in a running notifier).

    python bench/bench_notify.py [--alerts 10000] [--rounds 7]

Exits non-zero when the goal is missed.
"""

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.goals import verdict  # noqa: E402

GOAL_MS = 100.0
RULES = [
    ("HighCpuUsage", "warning", "devops"),
    ("HighMemoryUsage", "warning", "devops"),
    ("HighDiskUsage", "critical", "devops"),
    ("HighErrorRate", "critical", "development"),
    ("SlowResponseTime", "warning", "development"),
    ("HighPaymentFailureRate", "critical", "product"),
    ("LowStock", "info", "product"),
    ("BruteForceLogins", "warning", "security"),
]


def make_alerts(count: int, seed: int = 7) -> list[dict[str, str]]:
    """`count` alerts: each rule on each instance, a tenth of the warnings with a critical
    twin, and one target in a hundred down."""
    rng = random.Random(seed)
    alerts: list[dict[str, str]] = []
    host = 0
    while len(alerts) < count:
        base = {"instance": f"host{host}:8000", "job": "pasargad"}
        if host % 100 == 0:
            alerts.append(
                {**base, "alertname": "TargetDown", "severity": "critical", "team": "devops"}
            )
        for name, severity, team in RULES:
            alert = {**base, "alertname": name, "severity": severity, "team": team}
            alerts.append(alert)
            if severity == "warning" and rng.random() < 0.1:
                alerts.append({**alert, "severity": "critical"})
        host += 1
    return alerts[:count]


def cycle(route, inhibitor, alerts) -> tuple[int, int]:
    groups: set[str] = set()
    for labels in alerts:
        for leaf in route.match(labels):
            groups.add(leaf.group_key(labels))
    index = inhibitor.index(alerts)
    inhibited = sum(1 for labels in alerts if index.inhibited_by(labels) is not None)
    return len(groups), inhibited


def run(alerts: int = 10_000, rounds: int = 7) -> dict:
    from monitoring.notify.config import config_load
    from monitoring.notify.routing import Inhibitor, Route

    config = config_load(ROOT / "deploy" / "alertmanager" / "alertmanager.yml", env={})
    route, inhibitor = Route.build(config.route), Inhibitor.from_config(config)
    batch = make_alerts(alerts)
    times, result = [], (0, 0)
    for _ in range(rounds):
        start = time.perf_counter()
        result = cycle(route, inhibitor, batch)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "alerts": len(batch),
        "groups": result[0],
        "inhibited": result[1],
        "median_ms": statistics.median(times),
        "times_ms": times,
    }


def report(r: dict) -> str:
    return "\n".join(
        [
            f"{platform.python_implementation()} {platform.python_version()}",
            f"{r['alerts']} alerts → {r['groups']} groups, {r['inhibited']} inhibited",
            "| cycle: route + group keys + inhibition | ms |",
            "|---|---|",
            f"| median of {len(r['times_ms'])} | {r['median_ms']:.1f} |",
            f"| the first (memos empty), for information | {r['times_ms'][0]:.1f} |",
            f"goal: under {GOAL_MS:.0f} ms",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    result = run(alerts=args.alerts, rounds=args.rounds)
    print(report(result))
    return verdict(result["median_ms"] < GOAL_MS, f"cycle {result['median_ms']:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
