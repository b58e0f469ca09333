"""Run the real app under gunicorn (our config/gunicorn.conf.py) for a test, on a free port.

The listening socket is bound to port 0 here and handed to gunicorn as `fd://`, so there is
no window in which another process could take the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "test-monitoring-token"


def app_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = single_process(dict(os.environ))
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        VAR_DIR=str(tmp),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MONITORING_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        REDIS_URL="",
    )
    env.update(extra)
    return env


def single_process(env: dict[str, str]) -> dict[str, str]:
    """Without the variable at all: prometheus_client treats even an empty value as a dir."""
    return {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}


class Gunicorn:
    def __init__(self, tmp: Path, *, workers: int = 4, **extra_env: str) -> None:
        self.tmp = tmp
        self.env = app_env(tmp, WEB_CONCURRENCY=str(workers), **extra_env)
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.base_url = ""

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT, env=single_process(self.env), check=True, timeout=120,
        )  # fmt: skip

    def start(self) -> Gunicorn:
        self.migrate()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.set_inheritable(True)
        port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.launch()
        return self

    def launch(self) -> None:
        """gunicorn on the socket `start` bound (again after `kill`: the same address)."""
        self.log = open(self.tmp / "gunicorn.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py",
                "--bind", f"fd://{self.sock.fileno()}", "config.wsgi",
            ],
            cwd=ROOT, env=self.env, pass_fds=[self.sock.fileno()],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.wait_ready()

    def kill(self) -> None:
        """SIGKILL to the master and its workers at once (`kill -9` of the group, an OOM kill):
        no shutdown. The test keeps the listening socket, so `launch` can serve it again."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def worker_pids(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def wait_ready(self, timeout: float = 120.0) -> None:
        # Four workers importing Django on two busy cores took over 30 s in a full run.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {(self.tmp / 'gunicorn.log').read_text()}")
            if len(self.worker_pids()) == self.workers:
                try:
                    if self.scrape_text():
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not become ready")

    def scrape_text(self) -> str:
        response = httpx.get(
            f"{self.base_url}/api/monitoring/prometheus/",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,  # a bound, not a wait: a busy two-core machine took over 10 s
        )
        response.raise_for_status()
        return response.text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.sock is not None:
            self.sock.close()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
