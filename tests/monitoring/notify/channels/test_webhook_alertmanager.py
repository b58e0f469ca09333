"""Our webhook body against the one real Alertmanager 0.25 posts for the same alert: the same
fields, the same fingerprint, the same shapes (so receivers written for Alertmanager work)."""

import json
import shutil
import subprocess
import time

import httpx
import pytest

from monitoring.notify.channels.webhook import notification_from_webhook, webhook_body
from tests.faults import closed_port
from tests.monitoring.notify.channels.servers import HttpReceiver
from tests.services import require

BINARY = "prometheus-alertmanager"


@pytest.fixture
def alertmanager_body(tmp_path):
    require("Alertmanager (Debian's prometheus-alertmanager)", bool(shutil.which(BINARY)))
    receiver = HttpReceiver()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [alertname]\n"
        "  group_wait: 0s\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {receiver.url}/hook\n"
        "        send_resolved: true\n"
    )
    port = closed_port()
    log = (tmp_path / "alertmanager.log").open("wb")  # a file: a pipe left unread can fill
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        alert = {
            "labels": {"alertname": "HighPaymentFailureRate", "severity": "critical",
                       "instance": "web-1", "team": "product"},
            "annotations": {"summary": "Many payments are failing",
                            "runbook_url": "docs/runbooks/HighPaymentFailureRate.md"},
            "startsAt": "2026-12-04T22:00:00.123Z",
            "generatorURL": "http://monitor.example:9091/graph?g0.expr=x",
        }  # fmt: skip
        while time.monotonic() < deadline:
            try:
                if httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            time.sleep(0.2)
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.requests, "Alertmanager posted nothing within 60 s"
        yield json.loads(receiver.requests[0].body)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        receiver.close()


def test_our_body_matches_alertmanagers_for_the_same_alert(alertmanager_body):
    theirs = alertmanager_body
    ours = webhook_body(notification_from_webhook(theirs))
    assert ours.pop("idempotencyKey")
    assert ours == theirs  # every field, in Alertmanager's own encoding
    # Our fingerprint is computed from the labels: it is Alertmanager's.
    (alert,) = theirs["alerts"]
    assert alert["fingerprint"] == notification_from_webhook(theirs).alerts[0].fingerprint
    assert alert["startsAt"] == "2026-12-04T22:00:00.123Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"  # a firing alert's, as ours
