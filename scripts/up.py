"""`make up`: prepare the database and run the shop with its monitoring until Ctrl-C.

Embedded defaults: SQLite and no Redis (tasks run in-process; Redis and Celery report
"disabled"). With REDIS_URL set, a Celery worker and beat start beside the web app; without it,
`manage.py beat_inprocess` runs beat's schedule (reservation expiry) in-process.

Supervision: once the shop has answered its first health check, every process started here
(web app, monitor, Celery worker and beat) that exits, SIGKILL included, is started again after
a back-off (1 s, doubling to 60 s; back to 1 s once a run has lasted 60 s), so a crashed
monitor never takes the shop down, and a crashed web app is down only until its restart (the
monitor sees the gap: its `up` is 0). Each restart is a line on stderr and a count in
`$VAR_DIR/supervisor.json`, which the app exports as `supervisor_restarts_total{process}`.
Only Ctrl-C or SIGTERM stops everything, and nothing started here is left behind; a shop that
does not answer at start exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
STABLE_AFTER_S = 60.0  # a run this long resets the back-off
STATE_FILE = "supervisor.json"  # read by monitoring.collectors.supervisor


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.setdefault("PYTHONUNBUFFERED", "1")
    var = Path(env.setdefault("VAR_DIR", str(ROOT / "var")))
    var.mkdir(parents=True, exist_ok=True)
    # The monitor scrapes the app's Prometheus endpoint with this token; made once per checkout.
    if not env.get("MONITORING_TOKEN"):
        token_file = var / "monitoring_token"
        if not token_file.exists():
            import secrets

            token_file.write_text(secrets.token_urlsafe(32))
            token_file.chmod(0o600)
        env["MONITORING_TOKEN"] = token_file.read_text().strip()
    return env


def app_address(bind: str) -> str:
    """Where a client on this machine reaches a server bound to `bind` (host:port): a wildcard
    bind (0.0.0.0, ::, or no host) is reached on loopback."""
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host in ("[::]", "::"):
        host = "[::1]"
    return f"{host}:{port}"


def redacted_url(url: str) -> str:
    """`url` for a banner or log: its userinfo (a Redis or database password) and a
    `password=` query parameter replaced by `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{key}=***" if key.lower() == "password" else f"{key}={value}" if sep else key
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _signal_name(returncode: int) -> str:
    if returncode >= 0:
        return f"status {returncode}"
    try:
        return f"signal {-returncode} ({signal.Signals(-returncode).name})"
    except ValueError:
        return f"signal {-returncode}"


def _kill_group(pid: int) -> None:
    """Whatever a process left behind in its group (a SIGKILLed gunicorn's workers still hold
    the listening socket, and its restart could not bind)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Supervised:
    """One process kept running: started again after it exits, with exponential back-off."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.failures = 0  # consecutive short runs: the back-off's exponent
        self.restart_at: float | None = None
        self.last_exit: str | None = None

    def start(self) -> None:
        # Own process group, so that stopping one also stops whatever it spawned, and a Ctrl-C
        # in the terminal reaches up.py only (which then stops each in order).
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, start_new_session=True
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> bool:
        """Notice an exit (schedule the restart) or a restart that is due; True if either."""
        if self.process is not None and self.process.poll() is not None:
            ran = now - self.started_at
            _kill_group(self.process.pid)
            self.last_exit = _signal_name(self.process.returncode)
            self.process = None
            self.failures = 0 if ran >= STABLE_AFTER_S else self.failures + 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, self.failures - 1))
            self.restart_at = now + delay
            print(
                f"up: {self.name} exited with {self.last_exit} after {ran:.1f} s; "
                f"starting it again in {delay:g} s",
                file=sys.stderr,
                flush=True,
            )
            return True
        if self.process is None and self.restart_at is not None and now >= self.restart_at:
            self.restarts += 1
            self.start()
            print(
                f"up: {self.name} restarted (restart {self.restarts}, pid {self.process.pid})",
                file=sys.stderr,
                flush=True,
            )
            return True
        return False

    def state(self) -> dict:
        return {
            "restarts": self.restarts,
            "pid": self.process.pid if self.process is not None else None,
            "last_exit": self.last_exit,
        }


def _write_state(path: Path, supervised: list[Supervised]) -> None:
    data = {"pid": os.getpid(), "processes": {s.name: s.state() for s in supervised}}
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)  # atomic: the app never reads half a file


def _wait_until_serving(url: str, web: Supervised, stopping, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        if web.process is None or web.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    # Only each group's leader is asked to stop: gunicorn and Celery stop their own children
    # (signalling the children too makes gunicorn log their exit as an error).
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"up: {name} did not stop in time; killing it", file=sys.stderr)
            _kill_group(process.pid)
            process.wait()
        _kill_group(process.pid)  # anything the leader left behind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"))
    parser.add_argument(
        "--simulate", action="store_true", help="also drive simulated traffic at the shop"
    )
    parser.add_argument("--simulate-rate", type=float, default=5.0)
    parser.add_argument("--simulate-duration", type=float, default=3600.0)
    args = parser.parse_args(argv)

    env = _env()
    env["BIND"] = args.bind
    base_url = f"http://{app_address(args.bind)}"
    # The monitor scrapes the shop where it is served, whatever prometheus.yml's target says.
    env.setdefault("MONITOR_APP_TARGET", app_address(args.bind))
    # The spec's synthetic checks of the local shop (home, API health, login; docs/synthetic.md).
    env.setdefault("SYNTHETIC_CONFIG", "deploy/synthetic/checks.yml")
    _manage(env, "migrate", "--no-input", "-v", "0")
    _manage(env, "load_demo_catalog")

    supervised = [
        Supervised("web", [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "config.wsgi"], env),
        Supervised("monitor", [PYTHON, "manage.py", "monitor", "run"], env),
    ]  # fmt: skip
    if env.get("REDIS_URL"):
        celery = [str(BIN / "celery"), "-A", "config"]
        supervised.append(
            Supervised(
                "worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"], env
            )
        )
        schedule = str(Path(env["VAR_DIR"]) / "celerybeat-schedule")
        supervised.append(
            Supervised("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", schedule], env)
        )
    else:
        # No broker: the beat schedule (reservation expiry, …) runs in a process of its own,
        # its counters written beside gunicorn's.
        metrics = env.get("PROMETHEUS_MULTIPROC_DIR") or str(Path(env["VAR_DIR"]) / "metrics")
        beat_env = {**env, "PROMETHEUS_MULTIPROC_DIR": metrics}
        supervised.append(Supervised("beat", [PYTHON, "manage.py", "beat_inprocess"], beat_env))
    state_path = Path(env["VAR_DIR"]) / STATE_FILE
    simulator: subprocess.Popen | None = None
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for process in supervised:
            process.start()
        _write_state(state_path, supervised)
        web = supervised[0]
        if not _wait_until_serving(f"{base_url}/api/health/", web, lambda: stopping, timeout=60):
            if stopping:
                return 0
            print("up: the shop did not start; see the log lines above", file=sys.stderr)
            return 1
        if args.simulate:
            simulator = subprocess.Popen(
                [
                    PYTHON, "manage.py", "simulate_traffic", "--base-url", base_url,
                    "--rate", str(args.simulate_rate), "--duration", str(args.simulate_duration),
                    "--staff-user", "simulator",
                ],
                cwd=ROOT, env=env, start_new_session=True,
            )  # fmt: skip
        print(
            "\nPasargad Prints is running (Ctrl-C stops everything):\n"
            f"  shop API            {base_url}/api/\n"
            f"  API docs            {base_url}/api/docs/\n"
            f"  admin               {base_url}/admin/  (create a user: make superuser)\n"
            f"  health              {base_url}/api/health/\n"
            f"  metrics             {base_url}/api/monitoring/prometheus/"
            "  (Authorization: Bearer $(cat var/monitoring_token))\n"
            f"  monitor (PromQL)    http://{env.get('MONITOR_LISTEN', '127.0.0.1:9091')}/api/v1/alerts"
            f"  (scrapes {env['MONITOR_APP_TARGET']})\n"
            f"  logs (JSON lines)   {env.get('LOG_DIR', env['VAR_DIR'] + '/log')}/app.log, access.log\n"
            f"  background tasks    {'Celery on ' + redacted_url(env['REDIS_URL']) if env.get('REDIS_URL') else 'in-process (no REDIS_URL)'}\n"
            f"  restarts            {state_path}\n",
            flush=True,
        )
        while not stopping:
            now = time.monotonic()
            if any([process.check(now) for process in supervised]):
                _write_state(state_path, supervised)
            time.sleep(0.2)
    finally:
        running = {s.name: s.process for s in supervised if s.process is not None}
        if simulator is not None:
            running["simulator"] = simulator
        _stop(running)
        state_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
