"""Routing, grouping and inhibition of 10,000 active alerts, one notifier cycle.

The shipped `deploy/alertmanager/alertmanager.yml`; alerts shaped like the shipped rules'
(alertname, severity, team) on many instances, a tenth of them critical (so the
critical-suppresses-warning rule has work) and a few targets down (so TargetDown inhibits
their alerts). A cycle: route every alert (`Route.match`), take its group key on every route
it reaches, index the firing alerts for inhibition once and check every alert. Goal (issue
10): under 100 ms a cycle (median; the router's memos of match results and group keys are
warm after the first cycle, as in a running notifier).

Beside a real Alertmanager: the same alerts POSTed to its API and to the monitor's
(`manage.py monitor run`), both on the shipped routing tree and inhibition rules with every
receiver a local webhook; the time from the POST until the batch's last alert shows in
`/api/v2/alerts/groups` (ingest, route, group), at 1,000 and 10,000 alerts, with the ratio.

    python bench/bench_notify.py [--sizes 1000,10000] [--rounds 7]

Exits non-zero when the goal is missed (the cycle at the largest size).
"""

import argparse
import json
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.goals import verdict  # noqa: E402

GOAL_MS = 100.0
CHUNK = 500  # alerts a POST (Prometheus sends at most 64 at a time; the monitor takes 1 MiB)
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


def through_the_api(sizes: list[int], rounds: int) -> dict[int, dict[str, float]]:
    """Median ms from the POST of a batch until its last alert is grouped, per system."""
    from bench import bench_notify_latency as side

    receiver = side.Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = receiver.server_address[1]
    shipped = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    shipped.pop("templates", None)
    shipped["global"] = {"resolve_timeout": "5m"}
    token = secrets.token_hex(16)
    processes = []
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        workdir = Path(tmp)

        def config_for(system: str) -> str:
            receivers = [
                {
                    "name": r["name"],
                    "webhook_configs": [{"url": f"http://127.0.0.1:{port}/{system}"}],
                }
                for r in shipped["receivers"]
            ]
            return yaml.safe_dump({**shipped, "receivers": receivers}, sort_keys=False)

        am, am_url = side.start_alertmanager(workdir, config_for("alertmanager"))
        processes.append(am)
        ours, ours_url = side.start_monitor(workdir, config_for("ours"), token)
        processes.append(ours)
        targets = {"ours": (ours_url, token), "alertmanager": (am_url, "")}
        results: dict[int, dict[str, float]] = {}
        try:
            for size in sizes:
                times: dict[str, list[float]] = {s: [] for s in targets}
                for r in range(rounds):
                    for system, (url, tok) in targets.items():
                        batch = [
                            {"labels": {**labels, "bench_round": f"{size}-{r}"}}
                            for labels in make_alerts(size, seed=r)
                        ]
                        batch[-1]["labels"]["bench_last"] = "1"
                        start = time.perf_counter()
                        for first in range(0, len(batch), CHUNK):  # as Prometheus batches
                            side.post_alerts(url, batch[first : first + CHUNK], tok)
                        _wait_grouped(url, tok, f"{size}-{r}")
                        times[system].append((time.perf_counter() - start) * 1000)
                results[size] = {s: statistics.median(t) for s, t in times.items()}
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
            receiver.shutdown()
    return results


def _wait_grouped(url: str, token: str, run: str, timeout: float = 300) -> None:
    """Poll every 20 ms (the groups API is not free: a tighter loop slows what it measures)."""
    query = urllib.parse.urlencode(
        [("filter", f'bench_round="{run}"'), ("filter", 'bench_last="1"')]
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{url}/api/v2/alerts/groups?{query}", headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if json.loads(response.read()):
                return
        time.sleep(0.02)
    raise SystemExit(f"{url}: the batch {run} was never grouped")


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
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cycles = [run(alerts=size, rounds=args.rounds) for size in sizes]
    for result in cycles:
        print(report(result))
    api = through_the_api(sizes, rounds=3)
    print(
        "| beside Alertmanager: POST to grouped, median of 3 | ours ms | Alertmanager ms | ratio |"
    )
    print("|---|---|---|---|")
    for size, t in api.items():
        ratio = t["ours"] / t["alertmanager"]
        print(f"| {size} alerts | {t['ours']:.0f} | {t['alertmanager']:.0f} | {ratio:.2f} |")
    last = cycles[-1]
    return verdict(last["median_ms"] < GOAL_MS, f"cycle {last['median_ms']:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
