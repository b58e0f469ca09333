"""The whole shop running for the dashboard's browser tests and benchmark: the app under
gunicorn (PostgreSQL, Redis db 13), a Celery worker, and `monitor run` scraping it every
5 seconds (on a loaded machine a scrape can take seconds) with the shipped rule files; the app reaches the monitor through MONITOR_LISTEN, as
under `make up`. Staff and non-staff users are created for the browser to log in as.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import redis

from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.monitoring.monitor.test_run import MonitorProcess
from tests.services import require_postgres, require_redis

REDIS_DB = 13
STAFF = ("staffer", "staff-password-1")
CUSTOMER = ("customer", "customer-password-1")
DB_NAME = "pasargad_dashboard_e2e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(name: str = DB_NAME) -> str:
    for command in (["dropdb", "--if-exists", "--force"], ["createdb"]):
        subprocess.run([*command, "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def prometheus_dir(tmp: Path, app_address: str, interval_s: int) -> Path:
    """The shipped configuration scraping the app under test every `interval_s`."""
    prom = tmp / "prometheus"
    shutil.copytree(ROOT / "deploy/prometheus", prom, ignore=shutil.ignore_patterns("tests"))
    text = (prom / "prometheus.yml").read_text().replace("localhost:8000", app_address)
    text = re.sub(r"(scrape|evaluation)_interval: \w+", rf"\1_interval: {interval_s}s", text)
    (prom / "prometheus.yml").write_text(text)
    return prom


class Stack:
    def __init__(
        self, tmp: Path, *, interval_s: int = 5, data_dir: Path | None = None, workers: int = 2
    ) -> None:
        require_postgres()
        require_redis()
        self.tmp = tmp
        self.interval_s = interval_s
        self.monitor_port = free_port()
        self.data_dir = data_dir or tmp / "monitor-data"
        redis.Redis(db=REDIS_DB).flushdb()  # our own db (the preamble gives us 13)
        self.app = Gunicorn(
            tmp,
            workers=workers,
            DATABASE_URL=fresh_database(),
            REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
            MONITOR_LISTEN=f"127.0.0.1:{self.monitor_port}",
            MONITOR_DATA_DIR=str(self.data_dir),
            MONITOR_STATE_PATH=str(tmp / "state.sqlite3"),
            DASHBOARD_REFRESH_SECONDS="2",
            # Collectors read often, so a short run has every series (business: orders today).
            MONITORING_COLLECTOR_INTERVAL="1",
            MONITORING_BUSINESS_INTERVAL="2",
            PYTHONUNBUFFERED="1",
        )
        self.worker: subprocess.Popen | None = None
        self.simulators: list[subprocess.Popen] = []
        self.monitor: MonitorProcess | None = None

    def manage(self, *args: str, **env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env={**single_process(self.app.env), **env},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start(self) -> Stack:
        self.start_app()
        prom = prometheus_dir(self.tmp, self.app.base_url.removeprefix("http://"), self.interval_s)
        self.start_rest(prom)
        return self

    def start_app(self) -> None:
        """The app with the demo catalog (products to order) and the two users."""
        self.app.start()
        self.manage("load_demo_catalog")
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            f"User.objects.create_user({STAFF[0]!r}, password={STAFF[1]!r}, is_staff=True);"
            f"User.objects.create_user({CUSTOMER[0]!r}, password={CUSTOMER[1]!r})",
        )

    def start_rest(self, prom: Path) -> None:
        """The Celery worker and `monitor run` with the configuration in `prom`."""
        self.worker_log = open(self.tmp / "worker.log", "w")  # noqa: SIM115 (closed in stop)
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
            cwd=ROOT, env=single_process(self.app.env),
            stdout=self.worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.monitor = MonitorProcess(prom / "prometheus.yml", dict(single_process(self.app.env)))

    def traffic(self, seconds: float, rate: float = 8) -> subprocess.Popen:
        """Simulated shop traffic (shop.traffic) for `seconds`, in the background."""
        simulator = subprocess.Popen(
            [sys.executable, "manage.py", "simulate_traffic", "--base-url", self.app.base_url,
             "--rate", str(rate), "--duration", str(seconds), "--concurrency", "2",
             "--seed", "1", "--staff-user", "simulator"],
            cwd=ROOT, env=single_process(self.app.env),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.simulators.append(simulator)
        return simulator

    def stop(self) -> None:
        for simulator in self.simulators:
            if simulator.poll() is None:
                simulator.terminate()
                simulator.wait()
        if self.monitor is not None and self.monitor.proc.poll() is None:
            self.monitor.proc.terminate()
            try:
                self.monitor.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.monitor.proc.kill()
                self.monitor.proc.wait()
        if self.worker is not None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
            self.worker_log.close()
        self.app.stop()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def artefacts_dir() -> Path:
    """Where screenshots go: $DASHBOARD_ARTEFACTS, default build/artefacts (gitignored)."""
    path = Path(os.environ.get("DASHBOARD_ARTEFACTS", "") or ROOT / "build" / "artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
