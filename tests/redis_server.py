"""A redis-server of the test's own on a free port, to kill, restart, freeze and thaw.

No persistence: a killed server comes back empty, as a restarted cache-only Redis does (its
queued Celery messages are gone). `freeze` is SIGSTOP: connections are accepted by the kernel
and never answered, like a hung server.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.faults import closed_port
from tests.services import require
from tests.wait import wait_for


def require_redis_server() -> None:
    require("redis-server (Debian's redis-server package)", bool(shutil.which("redis-server")))


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = closed_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.tmp),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        wait_for(lambda: self._pings(client), timeout=20, what="redis-server answers")
        return self

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait()
