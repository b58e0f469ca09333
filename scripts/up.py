"""`make up`: prepare the database and run the shop with its monitoring until Ctrl-C.

Embedded defaults: SQLite and no Redis (tasks run in-process; Redis and Celery report
"disabled"). With REDIS_URL set, a Celery worker and beat start beside the web app.
Every process started here is stopped on Ctrl-C, SIGTERM, or when any one of them dies.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


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


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _wait_until_serving(url: str, processes: dict[str, subprocess.Popen], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes.values()):
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
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything the leader left behind
        except ProcessLookupError:
            pass


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
    base_url = f"http://{args.bind}"
    _manage(env, "migrate", "--no-input", "-v", "0")
    _manage(env, "load_demo_catalog")

    commands: dict[str, list[str]] = {
        "web": [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "config.wsgi"],
        "monitor": [PYTHON, "manage.py", "monitor", "run"],
    }
    if env.get("REDIS_URL"):
        celery = [str(BIN / "celery"), "-A", "config"]
        commands["worker"] = [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"]
        commands["beat"] = [
            *celery, "beat", "--loglevel", "INFO",
            "--schedule", str(Path(env["VAR_DIR"]) / "celerybeat-schedule"),
        ]  # fmt: skip

    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    try:
        for name, command in commands.items():
            # Own process group, so that stopping one also stops whatever it spawned.
            processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        if not _wait_until_serving(f"{base_url}/api/health/", processes, timeout=60):
            print("up: the shop did not start; see the log lines above", file=sys.stderr)
            return 1
        if args.simulate:
            processes["simulator"] = subprocess.Popen(
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
            f"  monitor (PromQL)    http://{env.get('MONITOR_LISTEN', '127.0.0.1:9091')}/api/v1/alerts\n"
            f"  logs (JSON lines)   {env.get('LOG_DIR', env['VAR_DIR'] + '/log')}/app.log, access.log\n"
            f"  background tasks    {'Celery on ' + env['REDIS_URL'] if env.get('REDIS_URL') else 'in-process (no REDIS_URL)'}\n",
            flush=True,
        )
        while not stopping:
            for name, process in processes.items():
                if name != "simulator" and process.poll() is not None:
                    print(f"up: {name} exited with {process.returncode}; stopping", file=sys.stderr)
                    exit_code = 1
                    stopping = True
            time.sleep(0.5)
    finally:
        _stop(processes)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
