"""Acceptance: every panel of every checked-in Grafana dashboard returns data, from real
Prometheus (Debian's) scraping the running shop and from the embedded monitor scraping the same
shop, as Grafana would ask for it (`query_range` for every target, and `query` for the stat
panels' instant ones), with the template variables at "All".

One stack for the module, as in production: the app under gunicorn (2 workers) on PostgreSQL
and Redis (database 8), a Celery worker, the demo catalog and a burst of simulated shop traffic
(orders, payments, logins, registrations, 404s); real Alertmanager (Debian's) as Prometheus'
notifier, both sending to a local webhook receiver.

"Returns data" means at least one series with a number that is not NaN. No panel is allowed
to be empty: the conditions some panels need are made here, not assumed:
- alerts (ALERTS, the notifier's counts): the shipped Watchdog rule (`vector(1)`) always fires,
  and is notified to the webhook by Alertmanager and by the monitor's own notifier;
- Celery task runtimes and queue waits: the orders' confirmation and payment capture jobs,
  which the worker runs;
- the notifier's series: Alertmanager (scraped by Prometheus as job `alertmanager`) and the
  monitor's own /metrics (job `prometheus`) export them under the same names.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import psycopg
import pytest
import redis
import yaml

from tests.gunicorn import BIN, ROOT, TOKEN, Gunicorn, single_process
from tests.monitoring.grafana.dashboards import Query, documents, queries
from tests.monitoring.monitor.test_run import MonitorProcess
from tests.monitoring.notify.channels.servers import HttpReceiver
from tests.monitoring.notify.real_alertmanager import free_port
from tests.services import (
    require_alertmanager,
    require_postgres,
    require_prometheus,
    require_redis,
)
from tests.wait import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

REDIS_URL = "redis://127.0.0.1:6379/8"  # this module's own Redis database
RULE_FILES = sorted(str(p) for p in (ROOT / "deploy/prometheus").glob("*_rules.yml"))
APP_JOB = "pasargad-prints"
SCRAPE = {"scrape_interval": "2s", "evaluation_interval": "1s"}
WEBHOOK = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"}


@dataclass
class Engines:
    prometheus: httpx.Client  # real Prometheus' API
    monitor: httpx.Client  # the embedded monitor's API (Prometheus' and Alertmanager's)
    alertmanager: httpx.Client  # real Alertmanager's API
    app_instance: str  # the app's `instance` label, host:port


class Stack:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.logs: list = []

    def spawn(self, command: list[str], log, **kwargs) -> subprocess.Popen:
        handle = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.logs.append(handle)
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for handle in self.logs:
            handle.close()


def _database(*, drop: bool = False) -> str:
    """A database of the app's own on the PostgreSQL the run points at, made afresh (or
    dropped)."""
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pasargad")
    if not server.startswith("postgres"):
        server = "postgres://postgres@127.0.0.1:5432/pasargad"
    name = os.environ.get("TEST_DB_NAME", "test_pasargad") + "_grafana"
    admin = server.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + "/" + name


def _up(client: httpx.Client, job: str) -> bool:
    try:
        answer = client.get("/api/v1/query", params={"query": f'up{{job="{job}"}} == 1'})
        return bool(answer.json()["data"]["result"])
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def _traffic(app: Gunicorn) -> None:
    """The shop's healthy traffic (with a staff user who moves orders on and restocks), then
    the answers a dashboard's error panels show: 404s and a refused login."""
    done = subprocess.run(
        [sys.executable, "manage.py", "simulate_traffic", "--base-url", app.base_url,
         "--rate", "15", "--duration", "15", "--concurrency", "2", "--seed", "14",
         "--staff-user", "grafana-simulator"],
        cwd=ROOT, env=single_process(app.env), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with httpx.Client(base_url=app.base_url, timeout=10) as client:
        for _ in range(5):
            assert client.get("/api/no-such-page/").status_code == 404


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """(real Prometheus, the embedded monitor) as API clients, both scraping the running app."""
    require_prometheus()
    require_alertmanager()
    require_postgres()
    require_redis()
    tmp = tmp_path_factory.mktemp("grafana")
    redis.Redis.from_url(REDIS_URL).flushdb()  # database 8 is this module's
    receiver = HttpReceiver()
    stack = Stack()
    app = Gunicorn(
        tmp,
        workers=2,
        DATABASE_URL=_database(),
        REDIS_URL=REDIS_URL,
        MONITORING_COLLECTOR_INTERVAL="1",
        MONITORING_BUSINESS_INTERVAL="1",
    )
    monitor = prometheus = alertmanager = None
    try:
        app.start()
        subprocess.run(
            [sys.executable, "manage.py", "load_demo_catalog"],
            cwd=ROOT, env=single_process(app.env), check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        stack.spawn(
            [str(BIN / "celery"), "-A", "config", "worker", "--pool=prefork", "--concurrency=1",
             "-n", f"grafana-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
            tmp / "worker.log", cwd=ROOT, env=app.env,
        )  # fmt: skip

        # Real Alertmanager, notifying the webhook.
        am_port, prom_port = free_port(), free_port()
        am_config = tmp / "alertmanager.yml"
        am_config.write_text(
            yaml.safe_dump(
                {
                    "route": {"receiver": "hook", **WEBHOOK},
                    "receivers": [
                        {"name": "hook", "webhook_configs": [{"url": f"{receiver.url}/am"}]}
                    ],
                }
            )
        )
        binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
        stack.spawn(
            [binary, f"--config.file={am_config}", f"--storage.path={tmp / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            tmp / "alertmanager.log",
        )  # fmt: skip

        # Real Prometheus: the app, itself and Alertmanager; every shipped rule file.
        target = app.base_url.removeprefix("http://")
        config = tmp / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": SCRAPE,
                    "rule_files": RULE_FILES,
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": APP_JOB,
                            "metrics_path": "/api/monitoring/prometheus/",
                            "authorization": {"credentials": TOKEN},
                            "static_configs": [{"targets": [target]}],
                        },
                        {
                            "job_name": "prometheus",
                            "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}],
                        },
                        {
                            "job_name": "alertmanager",
                            "static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}],
                        },
                    ],
                }
            )
        )
        stack.spawn(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            tmp / "prometheus.log",
        )  # fmt: skip
        prometheus = httpx.Client(base_url=f"http://127.0.0.1:{prom_port}", timeout=30)
        alertmanager = httpx.Client(base_url=f"http://127.0.0.1:{am_port}", timeout=30)

        # The embedded monitor: the app and itself (job `prometheus`), the same rule files, its
        # own notifier on the webhook.
        monitor_config = tmp / "monitor.yml"
        monitor_config.write_text(
            yaml.safe_dump(
                {
                    "global": SCRAPE,
                    "rule_files": RULE_FILES,
                    "scrape_configs": [
                        {
                            "job_name": APP_JOB,
                            "metrics_path": "/api/monitoring/prometheus/",
                            "static_configs": [{"targets": [target]}],
                        },
                        {"job_name": "prometheus", "static_configs": [{"targets": ["x:9090"]}]},
                    ],
                }
            )
        )
        notify = tmp / "notify.yml"
        notify.write_text(
            yaml.safe_dump(
                {
                    "route": {"receiver": "hook", **WEBHOOK},
                    "receivers": [
                        {"name": "hook", "webhook_configs": [{"url": f"{receiver.url}/monitor"}]}
                    ],
                }
            )
        )
        env = {
            **single_process(app.env),
            "MONITOR_LISTEN": "127.0.0.1:0",
            "NOTIFY_CONFIG": str(notify),
            "PYTHONUNBUFFERED": "1",
        }
        monitor = MonitorProcess(monitor_config, env)

        for client in (prometheus, monitor.client):
            wait_for(lambda c=client: _up(c, APP_JOB), timeout=90, what="the app scraped")
        _traffic(app)
        yield Engines(prometheus, monitor.client, alertmanager, target)
    finally:
        if monitor is not None:
            monitor.stop()
        for client in (prometheus, alertmanager):
            if client is not None:
                client.close()
        stack.stop()
        app.stop()
        receiver.close()
        _database(drop=True)


def _has_data(client: httpx.Client, query: Query, now: float) -> bool:
    """Grafana's range query for the panel (and the instant one of a stat panel) answers a
    series with a number."""
    asks = [("/api/v1/query_range", {"start": now - 600, "end": now, "step": 15})]
    if query.instant:
        asks.append(("/api/v1/query", {"time": now}))
    for path, params in asks:
        answer = client.post(path, data={"query": query.expr, **params})
        assert answer.status_code == 200, (str(query), answer.text)
        result = answer.json()["data"]["result"]
        values = [v for series in result for _, v in series.get("values", [series.get("value")])]
        if not any(not math.isnan(float(v)) for v in values):
            return False
    return True


def _empty(client: httpx.Client, all_queries: list[Query]) -> list[str]:
    now = time.time()
    return [str(q) for q in all_queries if not _has_data(client, q, now)]


def _every_panel_has_data(client: httpx.Client, all_queries: list[Query]) -> None:
    empty = [str(q) for q in all_queries]
    deadline = time.monotonic() + 180  # a loaded machine: rates need two scrapes of each series
    while empty and time.monotonic() < deadline:
        empty = _empty(client, all_queries)
        if empty:
            time.sleep(1)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_panel_returns_data_from_real_prometheus(engines):
    all_queries = queries()
    assert len(all_queries) > 100
    _every_panel_has_data(engines.prometheus, all_queries)


def test_every_panel_returns_data_from_the_embedded_monitor(engines):
    _every_panel_has_data(engines.monitor, queries())


def _chosen(engines: Engines) -> dict[str, dict[str, str]]:
    """The variables at one value each, as an operator narrows a dashboard to the shop's job
    and its one instance (the monitor's dashboard: job `prometheus`). The alerts dashboard
    does not filter by them."""
    # Grafana escapes a single value for the regex, then for the PromQL string: `127\\.0…`.
    instance = re.escape(engines.app_instance).replace("\\", "\\\\")
    app = {"$job": APP_JOB, "$instance": instance}
    chosen = {name: app for name in documents() if name != "pasargad-alerts.json"}
    chosen["pasargad-monitor.json"] = {"$job": "prometheus", "$instance": ".+"}
    return chosen


@pytest.mark.parametrize("engine", ["prometheus", "monitor"])
def test_every_panel_has_data_with_one_job_and_instance_chosen(engines, engine):
    _every_panel_has_data(getattr(engines, engine), queries(_chosen(engines)))


@pytest.mark.parametrize("engine", ["prometheus", "monitor"])
def test_the_template_variables_have_values(engines, engine):
    """The variables' queries, as Grafana runs `label_values(up, job)` and
    `label_values(up{job=~"$job"}, instance)`: the app's job and instance are offered."""
    client = getattr(engines, engine)
    jobs = client.get("/api/v1/label/job/values", params={"match[]": "up"}).json()["data"]
    assert APP_JOB in jobs and "prometheus" in jobs
    instances = client.get(
        "/api/v1/label/instance/values", params={"match[]": f'up{{job=~"{APP_JOB}"}}'}
    ).json()["data"]
    assert instances == [engines.app_instance]


@pytest.mark.parametrize("engine", ["alertmanager", "monitor"])
def test_the_alertmanager_data_source_endpoints(engines, engine):
    """What Grafana's Alertmanager data source (implementation `prometheus`) calls: its health
    check (`/api/v2/status`), alert groups and silences, on real Alertmanager and on the
    monitor the docs offer as ALERTMANAGER_URL."""
    client = getattr(engines, engine)
    status = client.get("/api/v2/status")
    assert status.status_code == 200 and "config" in status.json()

    def watchdog_grouped() -> bool:
        groups = client.get("/api/v2/alerts/groups").json()
        return any(
            alert["labels"]["alertname"] == "Watchdog"
            for group in groups
            for alert in group["alerts"]
        )

    wait_for(watchdog_grouped, timeout=60, what=f"Watchdog in {engine}'s alert groups")
    silences = client.get("/api/v2/silences")
    assert silences.status_code == 200 and isinstance(silences.json(), list)
