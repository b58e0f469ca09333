"""Exposition cost: our multiprocess reader vs prometheus_client's, and the real scrape p95.

1. Time per sample line, side by side on the same directory of per-process files: four forked
   workers record the app's HTTP and shop metrics (`observe_request` over 40 routes), then
   - **prometheus_client**: `generate_latest` over a registry with its `MultiProcessCollector`;
   - **ours**: `monitoring.metrics`' reader, as the endpoint uses it (the index of each file
     kept between scrapes), and for information a cold first scrape (new reader).
   Goal (issue 3): ours at most half of prometheus_client's time per line.
2. Scrape p95 of `GET /api/monitoring/prometheus/` on the real app under gunicorn with 4
   workers (SQLite, after `--requests` requests over the shop's routes). Goal: under 50 ms.

    python bench/bench_exposition.py [--rounds 31] [--scrapes 200] [--requests 1200]

Exits non-zero when a goal is missed.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.goals import verdict  # noqa: E402

LINE_GOAL = 0.5
P95_GOAL_MS = 50.0
WORKERS = 4


def record_worker_traffic(worker: int) -> None:
    """One forked worker's share of traffic over the app's real HTTP and shop metrics."""
    from monitoring.http import application
    from monitoring.http.metrics import observe_request

    for i in range(4000):
        route = f"/api/catalog/products/<int:pk>/r{i % 40}/"
        method = ("GET", "POST")[i % 2]
        status = (200, 200, 201, 404, 500)[(i + worker) % 5]
        observe_request(method, route, status, (i % 97) / 50.0, None)
    application.ORDERS_PLACED.inc(worker)
    application.PAYMENTS_FAILED.labels("stripe", "card_declined").inc()
    os._exit(0)


def fill(directory: Path) -> None:
    for worker in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            record_worker_traffic(worker)
        os.waitpid(pid, 0)


def sample_lines(text: bytes | str) -> int:
    if isinstance(text, bytes):
        text = text.decode()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def best_seconds(function, rounds: int) -> float:
    """Median of `rounds` timings (each the mean of 5 calls)."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(5):
            function()
        timings.append((time.perf_counter() - started) / 5)
    return statistics.median(timings)


def per_line(directory: Path, rounds: int) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from monitoring.multiprocess_reader import MultiprocessReader

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    reader = MultiprocessReader(directory)
    theirs_lines = sample_lines(generate_latest(registry))
    ours_lines = sample_lines(reader.text())
    assert theirs_lines == ours_lines, (theirs_lines, ours_lines)
    results = {"lines": ours_lines, "files": len(list(directory.glob("*.db")))}
    for name, function in (
        ("prometheus_client", lambda: generate_latest(registry)),
        ("ours", reader.text),
        ("ours, cold (for information)", lambda: MultiprocessReader(directory).text()),
    ):
        results[name] = best_seconds(function, rounds) / ours_lines * 1e6
    return results


def scrape_p95(scrapes: int, requests: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.gunicorn import TOKEN, Gunicorn

    paths = [
        "/api/catalog/products/",
        "/api/catalog/categories/",
        "/api/catalog/products/999999/",
        "/api/orders/",
        "/api/no-such-page/",
        "/api/monitoring/prometheus/",
    ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    try:
        with (
            Gunicorn(tmp, workers=WORKERS) as app,
            # httpx's default 5 s read timeout was passed on two cores busy with a test run.
            httpx.Client(base_url=app.base_url, timeout=60) as client,
        ):
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: client.get(paths[i % len(paths)]), range(requests)))
            headers = {"Authorization": f"Bearer {TOKEN}"}
            lines = sample_lines(client.get("/api/monitoring/prometheus/", headers=headers).text)
            timings = []
            for _ in range(scrapes):
                started = time.perf_counter()
                response = client.get("/api/monitoring/prometheus/", headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
        timings.sort()
        return {
            "lines": lines,
            "p50": timings[len(timings) // 2],
            "p95": timings[int(len(timings) * 0.95) - 1],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1200, help="traffic before scraping")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-exposition-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # before prometheus_client loads
    try:
        fill(directory)
        lines = per_line(directory, args.rounds)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    ratio = lines["ours"] / lines["prometheus_client"]
    print(f"Python {platform.python_version()} on {platform.machine()}\n")
    print(
        f"1. Time per sample line: {lines['lines']} lines from {lines['files']} files "
        f"({WORKERS} workers), median of {args.rounds} rounds\n"
    )
    print("| exposition | µs per line |\n|---|---|")
    for name in ("prometheus_client", "ours", "ours, cold (for information)"):
        print(f"| {name} | {lines[name]:.2f} |")
    line_ok = ratio <= LINE_GOAL
    print(
        f"\nratio ours/prometheus_client {ratio:.2f}x: "
        f"{'meets' if line_ok else 'MISSES'} the goal of at most {LINE_GOAL}x\n"
    )
    scrape = scrape_p95(args.scrapes, args.requests)
    p95_ok = scrape["p95"] < P95_GOAL_MS
    print(
        f"2. Scrape of the real app, gunicorn with {WORKERS} workers, {scrape['lines']} lines, "
        f"{args.scrapes} scrapes: p50 {scrape['p50']:.1f} ms, p95 {scrape['p95']:.1f} ms: "
        f"{'meets' if p95_ok else 'MISSES'} the goal of under {P95_GOAL_MS:.0f} ms"
    )
    return verdict(line_ok and p95_ok)


if __name__ == "__main__":
    sys.exit(main())
