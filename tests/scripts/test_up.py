"""`make up` (scripts/up.py) as a user runs it: real gunicorn, real monitor, real signals.

Issue 9: the monitor scraped localhost:8000 whatever BIND said; a SIGKILLed monitor stopped the
whole shop; a broken rule file kept the shop from starting; a thresholds.yml typo reached the
next web worker and failed its database connections (health 503 for good).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-monitoring-token"
DEADLINE_S = 120.0  # a loaded 2-core machine starts gunicorn, the monitor and migrations slowly


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float = DEADLINE_S, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _up_module():
    spec = importlib.util.spec_from_file_location("up", ROOT / "scripts/up.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_restarts_back_off_exponentially_and_reset_after_a_stable_run():
    up = _up_module()
    crashing = up.Supervised("crashing", [sys.executable, "-c", "raise SystemExit(3)"], {})
    crashing.start()
    delays = []
    for _ in range(8):
        crashing.process.wait(timeout=60)
        exited_at = crashing.started_at + 0.5  # a short run
        assert crashing.check(exited_at)  # the exit is noticed, the restart scheduled
        delays.append(crashing.restart_at - exited_at)
        assert crashing.last_exit == "status 3"
        assert not crashing.check(crashing.restart_at - 0.01)  # not before its time
        assert crashing.check(crashing.restart_at)  # started again
    # Differences of large monotonic readings: equal to within float rounding.
    assert delays == pytest.approx([1, 2, 4, 8, 16, 32, 60, 60])
    assert crashing.restarts == 8
    crashing.process.wait(timeout=60)
    assert crashing.check(crashing.started_at + 61)  # it had run for a minute: back to 1 s
    assert crashing.restart_at == pytest.approx(crashing.started_at + 61 + 1)
    assert up.app_address("0.0.0.0:8300") == "127.0.0.1:8300"
    assert up.app_address("[::]:8300") == "[::1]:8300"
    assert up.app_address("127.0.0.1:8123") == "127.0.0.1:8123"


class Up:
    """scripts/up.py in its own VAR_DIR and configuration directory, on free ports."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.config_dir = tmp / "prometheus"
        shutil.copytree(ROOT / "deploy/prometheus", self.config_dir)
        self.bind = f"127.0.0.1:{_free_port()}"
        self.monitor_url = f"http://127.0.0.1:{_free_port()}"
        self.base_url = f"http://{self.bind}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "REDIS_URL": "",
            "MONITORING_TOKEN": TOKEN,
            "MONITORING_CONFIG_DIR": str(self.config_dir),
            "MONITOR_LISTEN": self.monitor_url.removeprefix("http://"),
            "BIND": self.bind,
            "WEB_CONCURRENCY": "1",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("PROMETHEUS_MULTIPROC_DIR", "MONITOR_TOKEN", "MONITOR_APP_TARGET"):
            self.env.pop(name, None)
        self.process: subprocess.Popen | None = None
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def start(self, command: list[str] | None = None) -> Up:
        self.stdout = open(self.tmp / "up.out", "wb")  # noqa: SIM115
        self.stderr = open(self.tmp / "up.err", "wb")  # noqa: SIM115
        # Its own process group, as a terminal's foreground job: `stop` sends Ctrl-C's SIGINT
        # to the group, which reaches `make` and the up.py it runs alike.
        self.process = subprocess.Popen(
            command or [sys.executable, "scripts/up.py"],
            cwd=ROOT, env=self.env, stdout=self.stdout, stderr=self.stderr,
            start_new_session=True,
        )  # fmt: skip
        wait_for(self._serving, what="the shop and its monitor to serve")
        return self

    def _serving(self) -> bool:
        assert self.process.poll() is None, self.log()
        return "Pasargad Prints is running" in (self.tmp / "up.out").read_text() and (
            self.monitor_ready()
        )

    def log(self) -> str:
        return (self.tmp / "up.err").read_text(errors="replace")

    def state(self) -> dict:
        return json.loads((self.tmp / "var/supervisor.json").read_text())["processes"]

    def health(self) -> int:
        try:
            return httpx.get(f"{self.base_url}/api/health/", timeout=10).status_code
        except httpx.HTTPError:
            return 0

    def monitor(self, path: str, **kwargs) -> httpx.Response:
        method = kwargs.pop("method", "GET")
        return httpx.request(
            method, self.monitor_url + path, headers=self.headers, timeout=30, **kwargs
        )

    def monitor_ready(self) -> bool:
        try:
            return self.monitor("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def app_up(self) -> list[dict]:
        """The monitor's `up` samples for the app's job, once it has scraped the app."""
        try:
            result = self.monitor("/api/v1/query", params={"query": "up"}).json()["data"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []
        return [r for r in result["result"] if r["metric"]["job"] == "pasargad-prints"]

    def processes(self) -> list[psutil.Process]:
        """Every process up.py started, with their children (gunicorn's workers)."""
        found = []
        for state in self.state().values():
            if state["pid"]:
                try:
                    leader = psutil.Process(state["pid"])
                    found += [leader, *leader.children(recursive=True)]
                except psutil.NoSuchProcess:
                    pass
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C sends
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout.close()
        self.stderr.close()
        return self.process.returncode


@pytest.fixture
def up(tmp_path):
    started: list[Up] = []

    def start(prepare=None, command: list[str] | None = None) -> Up:
        runner = Up(tmp_path)
        if prepare is not None:
            prepare(runner)
        started.append(runner)
        return runner.start(command)

    yield start
    for runner in started:
        leftovers = runner.processes() if (runner.tmp / "var/supervisor.json").exists() else []
        runner.stop()
        for process in leftovers:  # never leave a server behind a failed test
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.mark.slow
def test_the_monitor_scrapes_bind_and_killed_processes_are_restarted_while_the_shop_serves(up):
    runner = up()
    # The shipped prometheus.yml says localhost:8000; the monitor scrapes where BIND serves.
    (sample,) = wait_for(
        lambda: [s for s in runner.app_up() if s["value"][1] == "1"], what="up == 1"
    )
    assert sample["metric"]["instance"] == runner.bind
    assert runner.state()["monitor"]["restarts"] == 0
    # Without Redis, beat's schedule (reservation expiry) runs in a supervised process too.
    assert runner.state()["beat"]["pid"] is not None

    statuses: list[int] = []
    stop_polling = threading.Event()

    def poll_health() -> None:
        while not stop_polling.is_set():
            statuses.append(runner.health())
            time.sleep(0.2)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    try:
        killed = runner.state()["monitor"]["pid"]
        os.kill(killed, signal.SIGKILL)
        wait_for(
            lambda: (
                runner.state()["monitor"]["pid"] not in (None, killed) and runner.monitor_ready()
            ),
            what="the monitor's restart",
        )
        # The new monitor scrapes the app again.
        wait_for(lambda: [s for s in runner.app_up() if s["value"][1] == "1"], what="up again")
    finally:
        stop_polling.set()
        poller.join()
    assert runner.process.poll() is None, runner.log()
    assert statuses and set(statuses) == {200}, statuses
    log = runner.log()
    assert "up: monitor exited with signal 9 (SIGKILL)" in log
    assert "up: monitor restarted (restart 1, pid" in log
    assert runner.state()["monitor"]["restarts"] == 1
    # Counted where an operator looks: the app's metrics (and so the monitor's queries).
    scrape = httpx.get(
        f"{runner.base_url}/api/monitoring/prometheus/", headers=runner.headers, timeout=30
    ).text
    assert 'supervisor_restarts_total{process="monitor"} 1.0' in scrape
    assert 'supervisor_restarts_total{process="web"} 0.0' in scrape

    # The web app is kept running too (the monitor, untouched, sees the gap as up == 0).
    monitor_pid = runner.state()["monitor"]["pid"]
    os.kill(runner.state()["web"]["pid"], signal.SIGKILL)
    wait_for(lambda: runner.state()["web"]["restarts"] == 1, what="the web app's restart")
    wait_for(lambda: runner.health() == 200, what="the restarted web app")
    assert "up: web exited with signal 9 (SIGKILL)" in runner.log()
    assert runner.state()["monitor"]["pid"] == monitor_pid

    # Ctrl-C stops everything, and nothing is left behind.
    started = runner.processes()
    assert len(started) >= 4  # gunicorn's master and worker, the monitor, beat_inprocess
    assert runner.stop() == 0
    assert not (runner.tmp / "var/supervisor.json").exists()
    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == []


@pytest.mark.slow
def test_make_up_with_bind_serves_there_and_its_monitor_scrapes_it(up):
    """`BIND=127.0.0.1:<port> make up`, the Makefile's own `up` recipe (`scripts/up.py --bind
    $(BIND)`) with this test's interpreter's venv as VENV. `up` depends on `install`, whose
    stamp `$(VENV)/.installed` is older than a freshly checked-out pyproject.toml: `-o` (GNU
    make's --assume-old) keeps make from re-installing into the shared venv, and changes nothing
    else in what `make up` runs."""
    venv = Path(sys.executable).parent.parent
    assert (venv / "bin" / "python").exists(), "the tests run from a virtualenv"
    make = ["make", "--no-print-directory", "-o", f"{venv}/.installed", "up", f"VENV={venv}"]
    runner = up(command=make)  # BIND in its environment, as `BIND=… make up` sets it
    (sample,) = wait_for(
        lambda: [s for s in runner.app_up() if s["value"][1] == "1"], what="up == 1"
    )
    assert sample["metric"]["instance"] == runner.bind
    assert runner.health() == 200
    # The recipe ran: make's child is up.py, given BIND as its --bind.
    (up_py,) = psutil.Process(runner.process.pid).children()
    assert up_py.cmdline()[1:] == ["scripts/up.py", "--bind", runner.bind]
    started = [psutil.Process(runner.process.pid), up_py, *runner.processes()]
    runner.stop()
    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == []
    assert not (runner.tmp / "var/supervisor.json").exists()


@pytest.mark.slow
def _rule_definitions(groups: list[dict]) -> list[tuple]:
    return [
        (g["name"], g["file"], [(r["name"], r["query"], r["labels"]) for r in g["rules"]])
        for g in groups
    ]


def test_broken_configuration_never_keeps_the_shop_from_serving(up):
    def break_a_rule_file(runner: Up) -> None:
        (runner.config_dir / "broken_rules.yml").write_text(
            "groups:\n  - name: broken\n    rules:\n      - alert: Oops\n        expr: up ==\n"
        )

    runner = up(break_a_rule_file)
    assert runner.health() == 200
    info = runner.monitor("/api/v1/status/runtimeinfo").json()["data"]
    assert info["reloadConfigSuccess"] is False
    (problem,) = info["configErrors"]
    assert problem.startswith(f"{runner.config_dir / 'broken_rules.yml'}:5: ")
    groups = runner.monitor("/api/v1/rules").json()["data"]["groups"]
    assert "system" in {g["name"] for g in groups} and "broken" not in {g["name"] for g in groups}

    # A typo in thresholds.yml: refused on reload, with its line; the running rules stay.
    thresholds = runner.config_dir / "thresholds.yml"
    thresholds.write_text(
        thresholds.read_text().replace("blocked_clients: 10", "blocked_clients: 1O")
    )
    response = runner.monitor("/-/reload", method="POST")
    assert response.status_code == 500
    assert f"{thresholds}:19: redis.blocked_clients: expected a number, got '1O'" in response.text
    # The same rules still run; their evaluation times and health move on, so leave them out.
    assert _rule_definitions(runner.monitor("/api/v1/rules").json()["data"]["groups"]) == (
        _rule_definitions(groups)
    )

    # ...and it does not reach a web worker started after it: its database connections work.
    (web,) = [p for p in runner.processes() if p.pid == runner.state()["web"]["pid"]]
    (worker,) = web.children()
    worker.kill()
    wait_for(
        lambda: [c for c in web.children() if c.pid != worker.pid], what="gunicorn's new worker"
    )
    assert wait_for(lambda: runner.health() == 200, what="health from the new worker")
    detailed = httpx.get(
        f"{runner.base_url}/api/health/detailed/", headers=runner.headers, timeout=30
    )
    assert detailed.json()["components"]["database"]["status"] == "ok", detailed.text
    assert runner.process.poll() is None, runner.log()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://***@cache:6379/0"),
        ("rediss://shop:s3cret@cache:6380/1", "rediss://***@cache:6380/1"),
        ("redis://cache:6379/0?password=s3cret&db=2", "redis://cache:6379/0?password=***&db=2"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_the_banner_never_shows_a_password_in_redis_url(url, shown):
    assert _up_module().redacted_url(url) == shown
