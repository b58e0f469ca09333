"""Drill: PostgreSQL down for 2 minutes under traffic; the monitor records alert state throughout.

The app runs under gunicorn on PostgreSQL through a proxy (tests.faults.TcpProxy) that the test
cuts: the shop's connections drop and new ones are refused, while the shared server keeps
serving everyone else. A real `monitor run` (DATABASE_URL pointing through the same proxy, as
under `make up`) scrapes the app every 2 s and evaluates rules that the outage sets off
(server errors, the database collector down) plus a Heartbeat alert that fires and resolves
every 10 s, so transitions keep being written all along. Alert state used to live in the
database the monitor watches: the outage was "evaluation of group failed" 80 times in two
minutes, and firing -> pending recorded when the database came back.

It is also issue 10's PostgreSQL drill: the monitor's notifier runs on the shipped
alertmanager.yml (group_interval 1s) to real local SMTP, Slack and SMS receivers
(tests/monitoring/notify/drill_receivers.py), and the shipped DatabaseDown rule (its
keep_firing_for shortened) is delivered everywhere while PostgreSQL is still cut; after the
restore every notification of the drill (the heartbeat's too) has arrived once, none lost.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from monitoring.rules.alerting import fingerprint
from tests.faults import tcp_proxy
from tests.gunicorn import Gunicorn
from tests.monitoring.monitor.test_run import MonitorProcess
from tests.monitoring.monitor.test_state import _legal_history
from tests.monitoring.notify.drill_receivers import (
    CRITICAL_DEVOPS,
    REPO,
    Receivers,
    shipped_notify_config,
)
from tests.services import require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CUT_S = 120
OUTAGE_ALERTS = {"ShopServerErrors", "DatabaseCollectorDown"}
RULES = """\
groups:
  - name: outage
    interval: 1s
    rules:
      - alert: ShopServerErrors
        expr: sum(increase(http_requests_total{status=~"5.."}[15s])) > 0
        for: 5s
      - alert: DatabaseCollectorDown
        expr: monitoring_collector_up{collector="database"} == 0
        for: 5s
  - name: heartbeat
    interval: 1s
    rules:
      - alert: Heartbeat
        expr: vector(time() % 20) < 10
"""


def _database_down_rule() -> str:
    """The shipped DatabaseDown rule (`for: 1m`, severity critical, team devops) as a group of
    its own; keep_firing_for 2m shortened so its resolution comes soon after the restore."""
    shipped = yaml.safe_load((REPO / "deploy/prometheus/monitor_rules.yml").read_text())
    (rule,) = [r for g in shipped["groups"] for r in g["rules"] if r.get("alert") == "DatabaseDown"]
    assert rule["for"] == "1m" and rule["labels"]["severity"] == "critical", rule
    rule["keep_firing_for"] = "5s"
    return yaml.safe_dump({"groups": [{"name": "shipped", "interval": "1s", "rules": [rule]}]})


@pytest.fixture
def app_database():
    """A database of the app's own on the real server (the app reaches it through the proxy)."""
    require_postgres()
    name = os.environ.get("TEST_DB_NAME", "test_pasargad") + "_outage"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _traffic(base_url: str, stop: threading.Event) -> None:
    """Shoppers browsing: pages that need the database, and the public health check."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            for path in ("/api/catalog/products/", "/api/health/"):
                try:
                    client.get(path)
                except httpx.HTTPError:
                    pass
            stop.wait(0.2)


def _transitions(state: str) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(state) as db:
        return db.execute(
            "SELECT alertname, from_state, to_state, at_ms FROM alert_transition ORDER BY id"
        ).fetchall()


def _live(monitor: MonitorProcess, names: set[str]) -> dict[str, str]:
    return {
        a["labels"]["alertname"]: a["state"]
        for a in monitor.alerts()
        if a["labels"]["alertname"] in names
    }


def _stored_matches_api(monitor: MonitorProcess, state: str) -> bool:
    """The file's pending/firing alerts are the API's, fingerprint for fingerprint (the API's
    labels hashed by the rules layer's one fingerprint)."""
    api = {fingerprint(a["labels"]): a["state"] for a in monitor.alerts()}
    with sqlite3.connect(state) as db:
        stored = dict(
            db.execute("SELECT fingerprint, state FROM alert WHERE state != 'inactive'").fetchall()
        )
    return stored == api


def test_postgres_cut_for_two_minutes_alert_state_is_recorded_throughout(tmp_path, app_database):
    stop = threading.Event()
    with tcp_proxy() as proxy:
        app_url = f"postgres://postgres@{proxy.address}/{app_database}"
        with Gunicorn(
            tmp_path, workers=2, DATABASE_URL=app_url, MONITORING_COLLECTOR_INTERVAL="1"
        ) as app:
            driver = threading.Thread(target=_traffic, args=(app.base_url, stop), daemon=True)
            driver.start()
            (tmp_path / "rules.yml").write_text(RULES)
            (tmp_path / "shipped_rules.yml").write_text(_database_down_rule())
            (tmp_path / "prometheus.yml").write_text(
                "global: {scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 1s}\n"
                "rule_files: [rules.yml, shipped_rules.yml]\n"
                "scrape_configs:\n"
                "  - job_name: app\n"
                "    metrics_path: /api/monitoring/prometheus/\n"
                f"    static_configs: [{{targets: ['{app.base_url.removeprefix('http://')}']}}]\n"
            )
            state = str(tmp_path / "monitor" / "state.sqlite3")
            receivers = Receivers(Path(state))
            env = {
                **app.env,
                "MONITOR_LISTEN": "127.0.0.1:0",
                "PYTHONUNBUFFERED": "1",
                **receivers.env(shipped_notify_config(tmp_path / "alertmanager.yml")),
            }
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            monitor = MonitorProcess(tmp_path / "prometheus.yml", env)
            try:
                # Healthy first: the heartbeat is being recorded, the outage alerts are quiet.
                monitor.wait_for(
                    lambda: any(t[0] == "Heartbeat" for t in _transitions(state)), timeout=60
                )
                assert not _live(monitor, OUTAGE_ALERTS)

                cut_ms = time.time() * 1000
                cut_at = time.monotonic()
                proxy.cut()
                monitor.wait_for(
                    lambda: _live(monitor, OUTAGE_ALERTS) == dict.fromkeys(OUTAGE_ALERTS, "firing"),
                    timeout=90,
                )
                # DatabaseDown (`for: 1m`) is told everywhere while PostgreSQL is still cut.
                told_at = monitor.wait_for(
                    lambda: (
                        receivers.told("DatabaseDown", "firing") == CRITICAL_DEVOPS
                        and time.monotonic()
                    ),
                    timeout=CUT_S,
                )
                assert told_at - cut_at < CUT_S, "DatabaseDown was not told during the cut"
                while time.monotonic() - cut_at < CUT_S:  # the outage lasts its 2 minutes
                    assert monitor.proc.poll() is None, "".join(monitor.output)
                    answer = httpx.get(f"{app.base_url}/api/catalog/products/")
                    assert answer.status_code == 503, answer.text  # JSON, with Retry-After
                    time.sleep(1)
                restore_ms = time.time() * 1000
                proxy.restore()

                monitor.wait_for(lambda: not _live(monitor, OUTAGE_ALERTS), timeout=90)
                assert monitor.wait_for(lambda: _stored_matches_api(monitor, state), timeout=30)
                monitor.wait_for(
                    lambda: receivers.told("DatabaseDown", "resolved") == CRITICAL_DEVOPS,
                    timeout=90,
                )
                monitor.wait_for(receivers.all_arrived, timeout=90)
            finally:
                stop.set()
                driver.join(timeout=15)
                monitor.stop()
                receivers.close()
            # The shop is back on its database.
            assert httpx.get(f"{app.base_url}/api/catalog/products/").status_code == 200

    # The heartbeat's notifications too (the last ones may be pending: it fires every 20 s).
    receivers.assert_none_lost_none_repeated(pending_ok=True)
    output = "".join(monitor.output)
    for problem in ("evaluation of group", "alert state", "Traceback"):
        assert problem not in output, output
    chains = _legal_history(tmp_path / "monitor" / "state.sqlite3")  # every transition legal
    assert all(("firing", "pending") not in chain for chain in chains.values())
    rows = _transitions(state)
    during = [r for r in rows if cut_ms <= r[3] <= restore_ms]
    # The outage alerts went pending and firing while PostgreSQL was down, and resolved after.
    for name in OUTAGE_ALERTS:
        assert ("pending", "firing") in [r[1:3] for r in during if r[0] == name], rows
        *_, last = [r for r in rows if r[0] == name]
        assert last[1:3] == ("firing", "inactive") and last[3] > restore_ms, rows
    # Recorded throughout: the heartbeat's transitions in every 20 s of the outage.
    heartbeat = [r[3] for r in during if r[0] == "Heartbeat"]
    for start in range(int(cut_ms), int(restore_ms) - 20_000, 20_000):
        assert any(start <= at < start + 20_000 for at in heartbeat), (start, heartbeat)
