"""A real Alertmanager 0.25 (Debian's prometheus-alertmanager) for tests: the `alertmanager`
fixture starts one on a given configuration file and a free port; `call` speaks its API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.services import require_alertmanager
from tests.wait import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path: Path):
    require_alertmanager()
    binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    started = []

    def start(config: Path) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, "alertmanager exited"
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, what="alertmanager ready")
        return url

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def call(url: str, body: object | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")
