"""`manage.py maintenance start` then `end` against a running shop (gunicorn), the embedded
notifier (the monitor's API, on a copy of the shipped alertmanager.yml whose receivers post to
a local webhook sink) and, on PostgreSQL, Redis and a real Celery worker.

Checked over HTTP: customers get 503 with Retry-After while health answers 200; the backup
restores; the stakeholders' notice arrives (and its resolution); the window (a silence by the
author) mutes the planned alerts and nothing else, and is listed with what it mutes; the Celery
worker stops consuming and consumes again; a step made to fail by a real condition (a shop that
does not answer, a critical alert outside the window, an unwritable backup directory) stops the
run with a clear message, and the rerun completes; the report lists every step.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from celery import Celery

from maintenance.procedure import END_STEPS, START_STEPS
from monitoring.monitor.api import api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from monitoring.notify.config import config_load
from monitoring.notify.routing import Route
from tests.faults import closed_port
from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.maintenance.test_recurring_windows import Sink, delivered, derived
from tests.monitoring.notify.real_alertmanager import call
from tests.services import require_redis
from tests.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("redis-db-11")]

REDIS = "redis://127.0.0.1:6379/11"
PLANNED = [
    {"alertname": "HighErrorRate", "severity": "critical", "team": "development"},
    {"alertname": "CeleryQueueBacklog", "severity": "warning", "team": "devops"},
]
UNPLANNED = [
    {"alertname": "DatabaseDown", "severity": "critical", "team": "devops"},
    {"alertname": "BackupTooOld", "severity": "warning", "team": "devops"},
]


@pytest.fixture
def notifier(tmp_path):
    sink = Sink()
    path = tmp_path / "notify.yml"
    path.write_text(derived(datetime.now(UTC), False, sink.url, group_interval="1s"))
    (tmp_path / "prometheus.yml").write_text("scrape_configs: []\n")
    env = {"MONITOR_STATE_PATH": str(tmp_path / "monitor.sqlite3"), "NOTIFY_CONFIG": str(path)}
    monitor = Monitor(config_path=tmp_path / "prometheus.yml", settings=settings_from_env(env))
    server = api_server_start(monitor, host="127.0.0.1", port=0)
    monitor.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", sink, path
    server.shutdown()
    server.server_close()
    monitor.stop()
    sink.shutdown()
    sink.server_close()


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def customers_get(shop: Gunicorn, path: str) -> httpx.Response:
    return httpx.get(shop.base_url + path, timeout=10)


def alerts_body(labels_list, ends: str | None = None) -> list[dict]:
    return [{"labels": labels} | ({"endsAt": ends} if ends else {}) for labels in labels_list]


def procedure_flow(
    tmp_path: Path, shop: Gunicorn, notifier, env: dict, *, fail_with: str, worker_app=None
) -> None:
    """The whole procedure; `end` is first made to fail by `fail_with`: "shop-down" (the shop
    it verifies does not answer) or "critical-alert" (an outage outside the window). Each
    manage.py run costs a Django start (seconds on a loaded machine): one failure per test."""
    am_url, sink, notify_path = notifier
    urls = ["--shop-url", shop.base_url, "--alertmanager-url", am_url]
    created = manage(
        env | {"DJANGO_SUPERUSER_PASSWORD": "pw-123-secret"},
        "createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert customers_get(shop, "/api/catalog/products/").status_code == 200

    # -- start ------------------------------------------------------------------------------
    started = manage(env, "maintenance", "start", "--author", "alice", "--reason", "upgrade", *urls)
    assert started.returncode == 0, started.stdout + started.stderr
    for name, _ in START_STEPS:
        assert f"ok  {name}:" in started.stdout
    state = json.loads((tmp_path / "maintenance" / "procedure.json").read_text())
    assert state["phase"] == "started" and state["author"] == "alice"

    # Customers see 503 with Retry-After (every gunicorn worker within its 1 s check), health
    # and the staff's answers stay 200.
    for path in ("/api/catalog/products/", "/"):  # the API, a page
        refused = wait_for(
            lambda p=path: (r := customers_get(shop, p)).status_code == 503 and r,
            30, f"503 for {path}",
        )  # fmt: skip
        assert refused.headers["Retry-After"] == "300"
    assert refused.headers["Content-Type"].startswith("text/html")
    assert customers_get(shop, "/api/catalog/products/").json()["code"] == "maintenance"
    assert customers_get(shop, "/api/health/").status_code == 200

    # The backup restores, with the superuser in it.
    backup = Path(state["backup"])
    assert restored_users(backup, env) == 1

    # Stakeholders told: the notice went through the routing (devops' email and the dashboard).
    notice = {("email-devops", "MaintenanceWindow"), ("dashboard", "MaintenanceWindow")}
    wait_for(lambda: notice <= sink.got, 60, "the maintenance notice")

    # Non-essential services down: beat paused, the worker consumes nothing.
    assert (tmp_path / "beat-paused.json").exists()
    if worker_app is not None:
        queues = worker_app.control.inspect(timeout=5).active_queues()
        assert queues and all(q == [] for q in queues.values()), queues
        assert state["workers"] and all(q == ["celery"] for q in state["workers"].values())

    # The window mutes the planned alerts and nothing else.
    silence_id = state["silence_id"]
    silence = call(f"{am_url}/api/v2/silence/{silence_id}")
    assert silence["createdBy"] == "alice" and "upgrade" in silence["comment"]
    httpx.post(f"{am_url}/api/v2/alerts", json=alerts_body(PLANNED + UNPLANNED)).raise_for_status()
    listed = {a["labels"]["alertname"]: a["status"]["silencedBy"] for a in call_alerts(am_url)}
    assert listed == {
        "HighErrorRate": [silence_id],
        "CeleryQueueBacklog": [silence_id],
        "DatabaseDown": [],
        "BackupTooOld": [],
        "MaintenanceWindow": [],
    }
    config = config_load(notify_path, env={})
    route = Route.build(config.route)
    want = notice | {
        (r, labels["alertname"]) for labels in UNPLANNED for r in route.receivers(labels)
    }
    assert delivered(sink, want) == want  # nothing of the planned alerts, anywhere

    if fail_with == "critical-alert":  # and the CLI lists the window with what it mutes
        windows = manage(env, "maintenance", "windows", "--json", *urls[2:])
        assert windows.returncode == 0, windows.stderr
        [window] = json.loads(windows.stdout)["silences"]
        assert window["id"] == silence_id and window["createdBy"] == "alice"
        muted = sorted(m["alertname"] for m in window["mutes"])
        assert muted == ["CeleryQueueBacklog", "HighErrorRate"]

    # -- end, made to fail by a real condition --------------------------------------------
    if fail_with == "shop-down":
        nowhere = ["--shop-url", f"http://127.0.0.1:{closed_port()}", *urls[2:]]
        failed = manage(env, "maintenance", "end", *nowhere)
        assert failed.returncode == 1
        assert "maintenance end stopped at step 'services verified'" in failed.stderr
        assert "does not answer" in failed.stderr
        failed_steps = ["services verified"]
    else:
        failed = manage(env, "maintenance", "end", *urls)
        assert failed.returncode == 1
        assert "stopped at step 'alerts checked'" in failed.stderr
        assert "critical alerts firing outside the window: DatabaseDown" in failed.stderr
        failed_steps = ["services verified", "smoke tests", "alerts checked"]
    assert "run `manage.py maintenance end` again" in failed.stderr
    assert customers_get(shop, "/api/catalog/products/").status_code == 503  # known: still on

    # The outage is fixed: its alert resolves; the rerun completes.
    resolved = alerts_body(UNPLANNED[:1], ends=datetime.now(UTC).isoformat())
    httpx.post(f"{am_url}/api/v2/alerts", json=resolved).raise_for_status()
    wait_for(
        lambda: "DatabaseDown" not in {a["labels"]["alertname"] for a in call_alerts(am_url)},
        30, "DatabaseDown resolved",
    )  # fmt: skip
    ended = manage(env, "maintenance", "end", *urls)
    assert ended.returncode == 0, ended.stdout + ended.stderr
    for name, _ in END_STEPS:
        assert f"ok  {name}:" in ended.stdout
    assert "7 passed" in ended.stdout  # the smoke tests

    wait_for(lambda: customers_get(shop, "/api/catalog/products/").status_code == 200, 30, "open")
    assert not (tmp_path / "beat-paused.json").exists()
    if worker_app is not None:
        queues = worker_app.control.inspect(timeout=5).active_queues()
        assert {w: [q["name"] for q in qs] for w, qs in queues.items()} == state["workers"]
    assert call(f"{am_url}/api/v2/silence/{silence_id}")["status"]["state"] == "expired"
    events = call(f"{am_url}/api/v2/silences/events?silence={silence_id}")
    assert [(e["action"], e["by"]) for e in events] == [("created", "alice"), ("expired", "alice")]
    wait_for(
        lambda: ("email-devops", "MaintenanceWindow", "resolved") in sink.log,
        60, "the end of maintenance told",
    )  # fmt: skip

    # The report lists every step run, with results and timings.
    state = json.loads((tmp_path / "maintenance" / "procedure.json").read_text())
    report = Path(tmp_path / "maintenance" / "reports" / f"maintenance-{state['id']}.md")
    text = report.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(START_STEPS) + len(failed_steps) + len(END_STEPS)
    for name, _ in START_STEPS + END_STEPS:
        assert f"| {name} | ok |" in text
    assert f"| {failed_steps[-1]} | failed |" in text
    assert "- phase: ended" in text


def call_alerts(am_url: str) -> list[dict]:
    return call(f"{am_url}/api/v2/alerts?active=true")


def restored_users(backup: Path, env: dict) -> int:
    if backup.suffix == ".sqlite3":
        with sqlite3.connect(backup) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            return db.execute("SELECT count(*) FROM auth_user").fetchone()[0]
    scratch = "pasargad_maint_windows_restore"
    pg = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", *pg, "--if-exists", scratch], check=True)
    subprocess.run(["createdb", *pg, scratch], check=True)
    try:
        subprocess.run(["pg_restore", *pg, "--no-owner", "-d", scratch, str(backup)], check=True)
        out = subprocess.run(
            ["psql", *pg, "-d", scratch, "-tAc", "SELECT count(*) FROM auth_user"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return int(out.stdout.strip())
    finally:
        subprocess.run(["dropdb", *pg, "--if-exists", scratch], check=True)


def test_start_and_end_on_sqlite(tmp_path, notifier):
    with Gunicorn(tmp_path, workers=2) as shop:
        env = single_process(shop.env)
        procedure_flow(tmp_path, shop, notifier, env, fail_with="shop-down")


@pytest.fixture
def celery_worker(tmp_path, pg_url):
    require_redis()
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    env = single_process(
        {
            **__import__("os").environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": pg_url,
            "REDIS_URL": REDIS,
            "VAR_DIR": str(tmp_path / "worker"),
        }
    )
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "-n", "maintenance-test@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    app = Celery(broker=REDIS)
    wait_for(
        lambda: process.poll() is None and app.control.inspect(timeout=1).active_queues(),
        60, "the Celery worker online",
    )  # fmt: skip
    yield app
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
    redis.Redis.from_url(REDIS).flushdb()


@pytest.fixture
def pg_url():
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_start_and_end_on_postgresql_with_a_celery_worker(
    tmp_path, notifier, pg_url, celery_worker
):
    with Gunicorn(tmp_path, workers=2, DATABASE_URL=pg_url, REDIS_URL=REDIS) as shop:
        env = single_process(shop.env)
        procedure_flow(
            tmp_path, shop, notifier, env, fail_with="critical-alert", worker_app=celery_worker
        )


def test_a_failed_start_stops_in_a_known_state_and_reruns_without_repeating_steps(
    tmp_path, notifier
):
    env = single_process(
        {
            **__import__("os").environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "",
        }
    )
    assert manage(env, "migrate", "--no-input", "-v", "0").returncode == 0
    (tmp_path / "not-a-dir").write_text("a file\n")
    failed = manage(
        env, "maintenance", "start", "--author", "bob",
        "--backup-dir", str(tmp_path / "not-a-dir" / "backups"),
        "--alertmanager-url", f"http://127.0.0.1:{closed_port()}",
    )  # fmt: skip
    assert failed.returncode == 1
    assert "maintenance start stopped at step 'database backup': backup failed" in failed.stderr
    assert "Not a directory" in failed.stderr
    assert not (tmp_path / "maintenance.json").exists()  # maintenance mode never went on
    assert not (tmp_path / "beat-paused.json").exists()
    state = json.loads((tmp_path / "maintenance" / "procedure.json").read_text())
    assert state["phase"] == "start failed"
    assert [(s["step"], s["result"]) for s in state["steps"]] == [("database backup", "failed")]
    report = (tmp_path / "maintenance" / "reports" / f"maintenance-{state['id']}.md").read_text()
    assert "| database backup | failed |" in report
    status = manage(env, "maintenance", "status")
    assert "start failed" in status.stdout

    # Rerun with the default directory but the notifier down: stops at the notice, the steps
    # before it done (a known state: backup taken, beat paused, maintenance mode on).
    down = f"http://127.0.0.1:{closed_port()}"
    failed = manage(env, "maintenance", "start", "--alertmanager-url", down)
    assert failed.returncode == 1
    assert "maintenance start stopped at step 'stakeholders notified'" in failed.stderr
    assert (tmp_path / "maintenance.json").exists() and (tmp_path / "beat-paused.json").exists()
    [backup] = (tmp_path / "backups").glob("pasargad-*")

    # The notifier back: the rerun completes; no second backup, and a further rerun no second
    # window.
    am_url, sink, _ = notifier
    for _ in range(2):
        done = manage(env, "maintenance", "start", "--alertmanager-url", am_url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"ok  database backup: already taken: {backup}" in done.stdout
    state = json.loads((tmp_path / "maintenance" / "procedure.json").read_text())
    assert state["phase"] == "started" and state["author"] == "bob"
    assert f"ok  window opened: already open: silence {state['silence_id']}" in done.stdout
    assert list((tmp_path / "backups").glob("pasargad-*")) == [backup]
    [silence] = call(f"{am_url}/api/v2/silences")
    assert silence["createdBy"] == "bob" and silence["id"] == state["silence_id"]
