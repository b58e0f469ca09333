"""One fingerprint, Alertmanager's: the engine's alert fingerprint (`rules.alerting.fingerprint`,
which the monitor stores) is the one real Alertmanager shows for the same label set, so the
notifier and anything comparing with Alertmanager join on it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import pytest

from monitoring.rules.alerting import fingerprint
from tests.services import require

pytestmark = pytest.mark.slow

LABEL_SETS = [
    {"alertname": "HighCpuUsage", "severity": "warning", "instance": "localhost:8000"},
    {"alertname": "PaymentFailures", "severity": "critical", "team": "product"},
    {"alertname": "Odd", "path": '/api/ü?x=1&y="2"', "empty_looking": " ", "z": "\\n"},
    {"alertname": "Watchdog"},
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path):
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    require("Alertmanager (Debian's prometheus-alertmanager)", bool(binary))
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n")
    port = _free_port()
    log = open(tmp_path / "alertmanager.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "alertmanager.log").read_text()
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_the_engines_fingerprint_is_alertmanagers(alertmanager):
    response = httpx.post(
        f"{alertmanager}/api/v2/alerts", json=[{"labels": labels} for labels in LABEL_SETS]
    )
    assert response.status_code == 200, response.text
    shown = {
        a["labels"]["alertname"]: a["fingerprint"]
        for a in httpx.get(f"{alertmanager}/api/v2/alerts").json()
    }
    assert shown == {labels["alertname"]: fingerprint(labels) for labels in LABEL_SETS}
