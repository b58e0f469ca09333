"""The monitor watches itself: its own metrics under Prometheus' names, scraped as "prometheus"."""

import shutil
import signal
import subprocess
import time

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.monitor.api import api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from tests.monitoring.exposition.test_prometheus_server import free_port
from tests.monitoring.monitor.exporter import Exporter
from tests.monitoring.monitor.test_run import MonitorProcess, database  # noqa: F401 (fixture)
from tests.services import require_prometheus

TOKEN = "self-scrape-token"
# Two series with the same labels once `on()` drops them all: the rule fails when evaluated
# (Prometheus' many-to-many matching error), not when loaded.
BODY = 'x{i="1"} 1\nx{i="2"} 2\n'
RULES = """\
groups:
  - name: broken
    rules:
      - record: x:matched
        expr: x + on() x
  - name: meta
    rules:
      - alert: RuleEvaluationFailures
        expr: increase(prometheus_rule_evaluation_failures_total[5m]) > 0
      - alert: ConfigReloadFailed
        expr: prometheus_config_last_reload_successful == 0
"""
CONFIG = """\
global: {{scrape_interval: 15s, evaluation_interval: 15s}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ['{app}']}}]
  - job_name: prometheus
    static_configs: [{{targets: ['localhost:9090']}}]
"""


@pytest.fixture
def watched(tmp_path):
    with Exporter() as exporter:
        exporter.body = BODY
        (tmp_path / "rules.yml").write_text(RULES)
        (tmp_path / "prometheus.yml").write_text(CONFIG.format(app=exporter.address))
        clock = [1_700_000_000_000]
        monitor = Monitor(
            config_path=tmp_path / "prometheus.yml",
            settings=settings_from_env({"MONITOR_TOKEN": TOKEN}),
            clock=lambda: clock[0],
            persist=False,
        )
        server = api_server_start(monitor, host="127.0.0.1", port=0, token=TOKEN)
        address = f"127.0.0.1:{server.server_address[1]}"
        monitor.scrape_itself(address)  # as `monitor run` does once its API listens
        client = httpx.Client(
            base_url=f"http://{address}", headers={"Authorization": f"Bearer {TOKEN}"}
        )

        def cycle() -> None:
            monitor.cycle_once()
            clock[0] += 15_000

        try:
            yield monitor, client, address, cycle, clock
        finally:
            client.close()
            server.shutdown()
            server.server_close()
            monitor.stop()


def _query(client: httpx.Client, expr: str, t_ms: int) -> list[dict]:
    response = client.get("/api/v1/query", params={"query": expr, "time": t_ms / 1000})
    assert response.status_code == 200, response.text
    return response.json()["data"]["result"]


def test_the_prometheus_job_is_the_monitor_itself_or_nothing(watched):
    monitor, _, address, _, _ = watched
    jobs = {t.job.job_name: t for t in monitor.scraper.targets()}
    assert jobs["prometheus"].target.address == address  # not localhost:9090
    assert jobs["prometheus"].job.bearer_token == TOKEN


def test_without_an_api_the_prometheus_job_is_left_out(tmp_path):
    (tmp_path / "rules.yml").write_text("groups: []\n")
    (tmp_path / "prometheus.yml").write_text(CONFIG.format(app="127.0.0.1:1"))
    monitor = Monitor(
        config_path=tmp_path / "prometheus.yml", settings=settings_from_env({}), persist=False
    )
    assert [t.job.job_name for t in monitor.scraper.targets()] == ["app"]


def test_a_rule_failing_at_evaluation_is_counted_and_alerts_through_the_self_scrape(watched):
    monitor, client, address, cycle, clock = watched
    cycle()  # scrapes (no evaluation yet: 0 failures), then the broken rule fails once
    cycle()  # the self-scrape reads 1 failure; RuleEvaluationFailures sees the increase
    t = clock[0] - 15_000
    (up,) = _query(client, 'up{job="prometheus"}', t)
    assert up["metric"]["instance"] == address and up["value"][1] == "1"
    failures = {
        r["metric"]["rule_group"]: r["value"][1]
        for r in _query(client, "prometheus_rule_evaluation_failures_total", t)
    }
    rules_file = str(monitor.config_path.parent / "rules.yml")
    assert failures == {f"{rules_file};broken": "1", f"{rules_file};meta": "0"}
    evaluations = _query(client, "prometheus_rule_evaluations_total", t)
    assert {r["metric"]["rule_group"]: r["value"][1] for r in evaluations} == {
        f"{rules_file};broken": "1",
        f"{rules_file};meta": "2",
    }
    (broken,) = [
        g for g in client.get("/api/v1/rules").json()["data"]["groups"] if g["name"] == "broken"
    ]
    assert "many-to-many matching not allowed" in broken["rules"][0]["lastError"]
    cycle()
    firing = [
        a["labels"]["alertname"] for a in client.get("/api/v1/alerts").json()["data"]["alerts"]
    ]
    assert firing == ["RuleEvaluationFailures"]
    (alert,) = client.get("/api/v1/alerts").json()["data"]["alerts"]
    assert alert["labels"]["rule_group"] == f"{rules_file};broken"


def test_a_failed_reload_is_exported_and_alerts(watched):
    monitor, client, _, cycle, clock = watched
    config = monitor.config_path
    good = config.read_text()
    before = _own_metrics(client)
    assert before["prometheus_config_last_reload_successful"] == 1
    config.write_text(good.replace("scrape_interval: 15s", "scrape_interval: soon"))
    assert monitor.reload()  # refused
    assert _own_metrics(client)["prometheus_config_last_reload_successful"] == 0
    cycle()
    cycle()
    alerts = client.get("/api/v1/alerts").json()["data"]["alerts"]
    assert "ConfigReloadFailed" in {a["labels"]["alertname"] for a in alerts}
    config.write_text(good)
    assert monitor.reload() == []
    after = _own_metrics(client)
    assert after["prometheus_config_last_reload_successful"] == 1
    assert (
        after["prometheus_config_last_reload_success_timestamp_seconds"]
        > before["prometheus_config_last_reload_success_timestamp_seconds"]
    )


def test_metrics_need_the_token_and_carry_prometheus_names(watched):
    monitor, client, address, cycle, _ = watched
    assert httpx.get(f"http://{address}/metrics").status_code == 401
    cycle()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = _own_metrics(client)
    assert values["prometheus_tsdb_head_series"] == monitor.store.stats()["series"] > 0
    assert (
        values['prometheus_tsdb_head_samples_appended_total{type="float"}']
        >= values["prometheus_tsdb_head_series"]
    )
    assert values["prometheus_ready"] == 0  # cycle_once only: the loops never started
    assert values['prometheus_sd_discovered_targets{config="app",name="scrape"}'] == 1
    assert values["process_resident_memory_bytes"] > 0
    group = f'rule_group="{monitor.config_path.parent / "rules.yml"};broken"'
    assert values[f"prometheus_rule_group_rules{{{group}}}"] == 1
    assert values[f"prometheus_rule_group_interval_seconds{{{group}}}"] == 15
    assert values[f"prometheus_rule_group_last_evaluation_timestamp_seconds{{{group}}}"] == 1.7e9
    assert values[f"prometheus_rule_group_iterations_missed_total{{{group}}}"] == 0


def test_own_metrics_pass_promtool_check_metrics(watched):
    require_prometheus()
    monitor, _, _, cycle, _ = watched
    cycle()
    result = subprocess.run(
        [shutil.which("promtool"), "check", "metrics"],
        input=generate_latest(monitor.metrics_registry),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_configuration_passes_promtool_with_the_self_scrape_job():
    require_prometheus()
    from tests.monitoring.monitor.test_config import REPO

    config = REPO / "deploy/prometheus/prometheus.yml"
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job_name: 'prometheus'" in config.read_text()


def _own_metrics(client: httpx.Client) -> dict[str, float]:
    """``name{labels}`` -> value of the monitor's /metrics (labels as written)."""
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.mark.slow
def test_monitor_run_scrapes_itself_with_its_token(tmp_path, database):  # noqa: F811
    # `monitor run` as a process: the "prometheus" job points at the API it listens on.
    with Exporter() as exporter:
        exporter.body = BODY
        (tmp_path / "rules.yml").write_text(RULES)
        (tmp_path / "prometheus.yml").write_text(
            CONFIG.format(app=exporter.address).replace("15s", "300ms")
        )
        env = {**database, "MONITOR_TOKEN": TOKEN}
        monitor = MonitorProcess(tmp_path / "prometheus.yml", env)
        try:
            address = str(monitor.client.base_url).removeprefix("http://").rstrip("/")
            assert httpx.get(f"http://{address}/metrics").status_code == 401

            def self_scraped():
                result = monitor.client.get(
                    "/api/v1/query", params={"query": 'up{job="prometheus"} == 1'}
                ).json()["data"]["result"]
                return result and result[0]["metric"]["instance"] == address

            monitor.wait_for(self_scraped, 30)
            monitor.proc.send_signal(signal.SIGHUP)  # the self-scrape survives a reload
            monitor.wait_for(lambda: monitor.logged("configuration reloaded"), 30)
            (target,) = [
                t
                for t in monitor.client.get("/api/v1/targets").json()["data"]["activeTargets"]
                if t["labels"]["job"] == "prometheus"
            ]
            assert target["scrapeUrl"] == f"http://{address}/metrics"
            monitor.wait_for(
                lambda: any(
                    r["metric"]["rule_group"].endswith(";broken") and float(r["value"][1]) > 0
                    for r in monitor.client.get(
                        "/api/v1/query",
                        params={"query": "prometheus_rule_evaluation_failures_total"},
                    ).json()["data"]["result"]
                ),
                30,
            )
        finally:
            monitor.stop()


@pytest.mark.slow
def test_every_family_we_export_is_prometheus_own_with_its_type(watched, tmp_path):
    # Real Prometheus 2.42 scraping itself: each of our families must exist there, same type.
    require_prometheus()
    monitor, client, _, cycle, _ = watched
    cycle()
    ours = {  # the notifier's are held to real Alertmanager's in test_api_v2
        name: family
        for name, family in _families(client.get("/metrics").text).items()
        if not name.startswith("alertmanager_")
    }
    port = free_port()
    (tmp_path / "real.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{tmp_path / 'rules.yml'}']\n"
        f"scrape_configs: [{{job_name: prometheus, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n"
    )
    (tmp_path / "rules.yml").write_text(RULES)
    real = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'real.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        text = ""
        # Ready, and its rule groups evaluated (a family without series is not written).
        while time.monotonic() < deadline and not (
            "\nprometheus_ready 1" in text
            and "\nprometheus_rule_evaluations_total{" in text
            and "\nprometheus_tsdb_head_samples_appended_total{" in text
        ):
            time.sleep(0.2)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.HTTPError:
                pass
        theirs = _families(text)
    finally:
        real.terminate()
        real.wait(timeout=30)
    assert "prometheus_ready" in theirs, "real Prometheus did not answer"
    assert {name: theirs.get(name) for name in ours} == ours
    assert len(ours) >= 20


def _families(text: str) -> dict[str, tuple[str, set[str]]]:
    """Each family's type and the label names its series carry."""
    return {
        f.name: (f.type, {name for s in f.samples for name in s.labels})
        for f in text_string_to_metric_families(text)
    }
