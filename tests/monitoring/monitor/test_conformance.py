"""Our monitor and real Prometheus scrape the same app and must answer the same queries.

The app runs under gunicorn (2 workers); real Prometheus (Debian's 2.42) and `monitor run`
scrape it every second with the same configuration and every shipped rule file. After a burst
of traffic both are queried at the same instant: counters that stopped moving must be equal,
rates and recording rules equal within scrape-timing tolerance, and the series sets identical.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.gunicorn import ROOT, TOKEN, Gunicorn
from tests.monitoring.exposition.test_prometheus_server import free_port
from tests.monitoring.monitor.test_run import MonitorProcess
from tests.services import require_prometheus
from tests.wait import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

# Requests to the metrics endpoint itself keep counting while the engines scrape: leave them out.
NOT_SCRAPES = 'route!~".*prometheus.*"'
EXACT = [
    f"http_requests_total{{{NOT_SCRAPES}}}",
    f"sum by (status) (http_requests_total{{{NOT_SCRAPES}}})",
    f"http_errors_total{{{NOT_SCRAPES}}}",
    f"sum without (le) (http_request_duration_seconds_bucket{{{NOT_SCRAPES}}})",
    "up",
    "orders_placed_total",
]
# WINDOW starts in a quiet moment before the burst and ends after it, so both engines' first
# and last samples in it have the same values. Rates and increases still differ by
# extrapolation: each engine stretches its sampled interval to the window's edges, and where
# its scrapes fall (up to one scrape interval from each edge) is its own, so they may differ
# by 2 x scrape interval / window. Quantiles and ratios of rates do not: their series come
# from the same scrapes and share one extrapolation factor.
EXTRAPOLATED = [
    f"rate(http_requests_total{{{NOT_SCRAPES}}}[WINDOW])",
    f"sum(increase(http_requests_total{{{NOT_SCRAPES}}}[WINDOW]))",
]
SHARED_FACTOR = [
    f"histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{{{NOT_SCRAPES}}}[WINDOW])))",
]
# 2 s, not 1 s: on a busy machine the app's answer can take longer than a second (the timeout),
# and a failed scrape would make one engine's series stale at the moment of comparison.
SCRAPE_S = 2
# Recorded series are computed at each engine's own evaluation instants: only their label sets
# are compared. The expressions of the rate-based ones are compared at one instant; not
# response_time_p95's: it includes the scrapes' own requests, whose few slow samples sit in a
# wide bucket, so the two engines' slightly different scrape instants move it by a third.
RECORDED = ["error_rate", "response_time_p95", "client_error_rate"]


def _recording_expressions() -> list[str]:
    document = yaml.safe_load((ROOT / "deploy/prometheus/recording_rules.yml").read_text())
    rules = {
        r["record"]: r["expr"] for g in document["groups"] for r in g["rules"] if "record" in r
    }
    return [rules["error_rate"], rules["client_error_rate"]]


def _config(tmp: Path, app_address: str) -> Path:
    spec = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = spec["scrape_configs"][0]
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": "1s"},
        "rule_files": [
            *sorted(str(p) for p in (ROOT / "deploy/prometheus").glob("*_rules.yml")),
            str(_conformance_rules(tmp)),
        ],
        "scrape_configs": [
            {
                "job_name": job["job_name"],
                "metrics_path": job["metrics_path"],
                "authorization": {"credentials": TOKEN},
                "static_configs": [{"targets": [app_address]}],
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _conformance_rules(tmp: Path) -> Path:
    """An alert both engines fire at once, with templated labels and annotations to compare."""
    path = tmp / "conformance_rules.yml"
    path.write_text(
        "groups:\n  - name: conformance\n    rules:\n"
        "      - alert: TargetUp\n        expr: up * 95.5 > 1\n"
        "        labels: {severity: info, target: '{{ $labels.instance }}'}\n"
        "        annotations:\n"
        "          summary: '{{ $labels.job }} is up'\n"
        "          description: 'value {{ $value }}, {{ $value | humanize }}, {{ printf \"%.1f\" $value }}'\n"
    )
    return path


def _traffic(base_url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline:
            client.get("/api/catalog/products/")  # 200
            client.get("/api/catalog/categories/")  # 200
            client.get("/api/no-such-page/")  # 404
            client.post("/api/orders/", json={})  # refused: not signed in
            time.sleep(0.02)


def _query(client: httpx.Client, expr: str, t: float) -> dict[tuple, float]:
    response = client.get("/api/v1/query", params={"query": expr, "time": t})
    body = response.json()
    assert response.status_code == 200, (expr, body)
    result = body["data"]["result"]
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def _scraped_twice_since(since: float, *clients: httpx.Client) -> None:
    """Wait until every engine has scraped every target at least twice since `since`."""

    def scrapes(client: httpx.Client) -> float:
        now = time.time()
        window = f"{max(1, round((now - since) * 1000))}ms"
        counts = _query(client, f"count_over_time(up[{window}])", now).values()
        return min(counts, default=0)

    wait_for(lambda: all(scrapes(c) >= 2 for c in clients), timeout=60, what="two scrapes")


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-6)


@pytest.fixture
def engines(tmp_path):
    require_prometheus()
    with Gunicorn(tmp_path, workers=2) as app:
        config = _config(tmp_path, app.base_url.removeprefix("http://"))
        port = free_port()
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        env = {**app.env, "MONITOR_LISTEN": "127.0.0.1:0", "PYTHONUNBUFFERED": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        ours = MonitorProcess(config, env)
        theirs = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        try:
            yield app, ours, theirs
        finally:
            theirs.close()
            ours.stop()
            os.killpg(prometheus.pid, signal.SIGTERM)
            prometheus.wait(timeout=15)
            log.close()


def test_our_answers_match_real_prometheus(engines):
    app, ours, theirs = engines
    # Both engines up and scraping before the traffic starts.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _query(theirs, "up == 1", time.time()) and _query(
                ours.client, "up == 1", time.time()
            ):
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    _traffic(app.base_url, 1)  # warm up: every series exists in both engines
    _scraped_twice_since(time.time(), ours.client, theirs)  # the same still counters
    burst = time.time()
    _traffic(app.base_url, 4)
    _scraped_twice_since(time.time(), ours.client, theirs)
    t = time.time() - 0.5
    window_s = t - burst + 1.25 * SCRAPE_S
    window = f"{round(window_s * 1000)}ms"
    mismatches = []
    statuses = _query(theirs, EXACT[1], t)
    assert len(statuses) >= 3, f"the traffic should produce several statuses: {statuses}"
    tolerance = {expr: 0.0 for expr in EXACT}
    tolerance.update(
        {e.replace("WINDOW", window): 2 * SCRAPE_S / window_s + 0.02 for e in EXTRAPOLATED}
    )
    tolerance.update({e.replace("WINDOW", window): 0.05 for e in SHARED_FACTOR})
    tolerance.update({e: 0.05 for e in _recording_expressions()})
    for expr in [*tolerance, *RECORDED]:
        mine, reference = _query(ours.client, expr, t), _query(theirs, expr, t)
        assert reference or expr in ("orders_placed_total",), f"Prometheus has no data for {expr}"
        if set(mine) != set(reference):
            mismatches.append(f"{expr}: series differ: {set(mine) ^ set(reference)}")
            continue
        if expr in RECORDED:
            continue
        for labels, value in reference.items():
            if not _close(mine[labels], value, tolerance[expr]):
                mismatches.append(f"{expr} {dict(labels)}: ours {mine[labels]} vs {value}")
    assert not mismatches, "\n".join(mismatches)
    # The same rules, loaded healthy in both.
    ours_rules = ours.client.get("/api/v1/rules").json()["data"]["groups"]
    their_rules = theirs.get("/api/v1/rules").json()["data"]["groups"]
    names = lambda groups: sorted((g["name"], r["name"]) for g in groups for r in g["rules"])  # noqa: E731
    assert names(ours_rules) == names(their_rules)
    assert all(r["health"] == "ok" for g in ours_rules for r in g["rules"]), ours_rules
    # The same alert, labels and annotations expanded alike, value printed alike.
    (mine,) = [a for a in ours.alerts() if a["labels"]["alertname"] == "TargetUp"]
    theirs_alerts = theirs.get("/api/v1/alerts").json()["data"]["alerts"]
    (reference,) = [a for a in theirs_alerts if a["labels"]["alertname"] == "TargetUp"]
    assert set(mine) >= set(reference)
    for key in ("labels", "annotations", "state", "value"):
        assert mine[key] == reference[key], key
    # The rules API prints the alert's value as the alerts API does (Go's %e), in both.
    in_rules = lambda client: next(  # noqa: E731
        a
        for g in client.get("/api/v1/rules").json()["data"]["groups"]
        for r in g["rules"]
        for a in r.get("alerts", [])
        if a["labels"]["alertname"] == "TargetUp"
    )
    assert in_rules(ours.client)["value"] == in_rules(theirs)["value"] == reference["value"]
    # The same JSON shapes: every key Prometheus sends, we send.
    shape_mismatches = []
    for path, pick in [
        ("/api/v1/targets", lambda d: d["activeTargets"][0]),
        ("/api/v1/rules", lambda d: d["groups"][0]),
        ("/api/v1/rules?type=alert", lambda d: d["groups"][0]["rules"][0]),
        ("/api/v1/rules?type=record", lambda d: _first_recording(d)),
    ]:
        mine = pick(ours.client.get(path).json()["data"])
        reference = pick(theirs.get(path).json()["data"])
        if set(reference) - set(mine):
            shape_mismatches.append(f"{path}: missing {sorted(set(reference) - set(mine))}")
    assert not shape_mismatches, shape_mismatches
    # The same series and label values for the app's metrics.
    for path, params in [
        ("/api/v1/series", {"match[]": f"http_requests_total{{{NOT_SCRAPES}}}"}),
        ("/api/v1/label/route/values", {"match[]": "http_requests_total"}),
    ]:
        mine = ours.client.get(path, params=params).json()["data"]
        reference = theirs.get(path, params=params).json()["data"]
        key = lambda item: sorted(item.items()) if isinstance(item, dict) else item  # noqa: E731
        assert sorted(mine, key=key) == sorted(reference, key=key), path


def _first_recording(data: dict) -> dict:
    return next(rule for group in data["groups"] for rule in group["rules"])
