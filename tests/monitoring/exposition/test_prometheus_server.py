"""Acceptance: real Prometheus scrapes the app under gunicorn and evaluates every rule file.

Prometheus runs the specification's prometheus.yml shape (one job on the app's metrics path),
adapted to the test: 1 s scrape and evaluation, the app's free port, the bearer token, and
every rule file of deploy/prometheus/. The app runs on PostgreSQL, the database the spec's
connection metrics describe.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import yaml

from tests.gunicorn import ROOT, TOKEN, Gunicorn
from tests.services import require_postgres, require_prometheus

PROM_DIR = ROOT / "deploy" / "prometheus"

# The specification's Grafana dashboard panels ("Grafana Dashboard Configuration").
DASHBOARD_EXPRESSIONS = [
    "cpu_usage_percent",
    "memory_usage_percent",
    "disk_usage_percent",
    "rate(http_requests_total[5m])",
    "rate(http_errors_total[5m])",
    "database_connections_active",
]


def rule_files() -> list[Path]:
    """Every Prometheus rule file under deploy/ (templates are not rule files until rendered)."""
    found = []
    for path in sorted((ROOT / "deploy").rglob("*.yml")):
        if "templates" in path.parts or path.name.endswith(".test.yml"):
            continue
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and "groups" in document:
            found.append(path)
    return found


def alert_operands() -> list[str]:
    """The measured side of each of the spec's alert rules (`error_rate` of `error_rate > 5`,
    and of `error_rate > 5 and on () <traffic guard>`)."""
    document = yaml.safe_load((PROM_DIR / "alert_rules.yml").read_text())
    operands = []
    for group in document["groups"]:
        for rule in group["rules"]:
            condition = re.split(r"\s+and on\b", rule["expr"])[0]
            match = re.fullmatch(r"\s*(.+?)\s*[<>]=?\s*[-\d.]+\s*", condition)
            assert match, f"unexpected alert expression shape: {rule['expr']}"
            operands.append(match.group(1))
    return operands


@pytest.mark.prometheus
def test_promtool_accepts_every_rule_file_in_deploy():
    require_prometheus()
    files = rule_files()
    assert PROM_DIR / "recording_rules.yml" in files and PROM_DIR / "alert_rules.yml" in files
    check = subprocess.run(
        ["promtool", "check", "rules", *map(str, files)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        ["promtool", "test", "rules", "tests/recording_rules.test.yml"],
        cwd=PROM_DIR, capture_output=True, text=True,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr


def free_port() -> int:
    # Prometheus binds its own listener; this is the only way to tell it a free port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prometheus_config(app_url: str, tmp: Path) -> Path:
    spec = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    job = spec["scrape_configs"][0]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files()],
        "scrape_configs": [
            {
                "job_name": job["job_name"],
                "metrics_path": job["metrics_path"],
                "scrape_interval": "1s",
                "authorization": {"credentials": TOKEN},
                "static_configs": [{"targets": [urlsplit(app_url).netloc]}],
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def postgres_app_db():
    """A database of its own for the gunicorn app, on the PostgreSQL the test run points at."""
    require_postgres()
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pasargad")
    name = os.environ.get("TEST_DB_NAME", "test_pasargad") + "_gunicorn"
    admin = server.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(base: str, expr: str) -> list:
    response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def rules_status(base: str) -> list[dict]:
    return httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]


def traffic(base_url: str, stop: threading.Event) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while not stop.is_set():
            client.get("/api/health/")
            client.get("/api/monitoring/prometheus/")  # 401
            client.get("/api/no-such-page/")  # 404
            stop.wait(0.05)


@pytest.mark.postgres
@pytest.mark.prometheus
@pytest.mark.slow
def test_prometheus_evaluates_spec_expressions_and_rules(tmp_path, postgres_app_db):
    require_prometheus()
    stop = threading.Event()
    with Gunicorn(tmp_path, workers=2, DATABASE_URL=postgres_app_db) as app:
        driver = threading.Thread(target=traffic, args=(app.base_url, stop), daemon=True)
        driver.start()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={prometheus_config(app.base_url, tmp_path)}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            expressions = DASHBOARD_EXPRESSIONS + alert_operands()
            missing, unhealthy = expressions, ["not asked yet"]
            deadline = time.monotonic() + 90
            while (missing or unhealthy) and time.monotonic() < deadline:
                time.sleep(1)
                try:
                    missing = [expr for expr in expressions if not query(base, expr)]
                    groups = rules_status(base)
                except httpx.HTTPError:
                    continue
                unhealthy = [
                    f"{group['file']}:{group['name']}:{rule['name']}: {rule.get('lastError')}"
                    for group in groups
                    for rule in group["rules"]
                    if rule["health"] != "ok" or rule.get("lastError")
                ]
            assert not missing, f"no data for {missing}; log: {(tmp_path / 'prometheus.log')}"
            assert not unhealthy
            loaded = {Path(group["file"]) for group in rules_status(base)}
            assert loaded == set(rule_files())
            targets = httpx.get(f"{base}/api/v1/targets", timeout=5).json()["data"]
            assert [t["health"] for t in targets["activeTargets"]] == ["up"]
        finally:
            stop.set()
            driver.join(timeout=5)
            os.killpg(prometheus.pid, signal.SIGTERM)
            prometheus.wait(timeout=15)
            log.close()
