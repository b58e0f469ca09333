"""Alerts POSTed to the monitor's /api/v2/alerts go through the pipeline as the monitor's own:
routed, grouped, silenced/inhibited and delivered, here to a real local webhook receiver; a
real Prometheus sends to the monitor as to Alertmanager; amtool sees what the pipeline holds."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from monitoring.monitor.api import api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from tests.monitoring.notify.channels.servers import HttpReceiver
from tests.monitoring.notify.real_alertmanager import free_port
from tests.services import require_alertmanager, require_prometheus
from tests.wait import wait_for

TOKEN = "received-test-token"
NOTIFY = """\
global: {resolve_timeout: 2s}
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname]
receivers:
  - name: hook
    webhook_configs: [{url: "{url}/hook", send_resolved: true}]
"""


class Running:
    """A started monitor (no rules of its own) whose notifier delivers to `receiver`."""

    def __init__(self, tmp: Path, receiver: HttpReceiver) -> None:
        self.tmp, self.receiver = tmp, receiver
        (tmp / "prometheus.yml").write_text("scrape_configs: []\n")
        (tmp / "alertmanager.yml").write_text(NOTIFY.replace("{url}", receiver.url))
        (tmp / "http.yml").write_text(f"authorization:\n  credentials: {TOKEN}\n")
        env = {
            "MONITOR_STATE_PATH": str(tmp / "state.sqlite3"),
            "NOTIFY_CONFIG": str(tmp / "alertmanager.yml"),
        }
        self.monitor = Monitor(config_path=tmp / "prometheus.yml", settings=settings_from_env(env))
        self.server = api_server_start(self.monitor, host="127.0.0.1", port=0, token=TOKEN)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.monitor.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.monitor.stop()

    def post(self, *alerts: dict) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), headers=headers)

    def get(self, path: str, **params) -> list:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = httpx.get(self.url + path, params=params, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def amtool(self, *args: str) -> str:
        done = subprocess.run(
            [
                shutil.which("amtool"),
                f"--alertmanager.url={self.url}",
                f"--http.config.file={self.tmp / 'http.yml'}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def delivered(self, alertname: str) -> list[tuple[str, dict]]:
        """(alert status, labels) of every alert named so in the webhooks received, in order."""
        return [
            (a["status"], a["labels"])
            for r in list(self.receiver.requests)
            for a in json.loads(r.body)["alerts"]
            if a["labels"].get("alertname") == alertname
        ]


@pytest.fixture
def running(tmp_path):
    receiver = HttpReceiver()
    running = Running(tmp_path, receiver)
    yield running
    running.stop()
    receiver.close()


def _at(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


def test_a_posted_alert_is_delivered_and_its_end_resolves_it(running):
    firing = {"labels": {"alertname": "Posted", "severity": "critical"}, "endsAt": _at(3600)}
    assert running.post(firing).status_code == 200
    wait_for(lambda: running.delivered("Posted"), timeout=30, what="the firing notice")
    [shown] = running.get("/api/v2/alerts")
    assert shown["labels"]["alertname"] == "Posted" and shown["status"]["state"] == "active"
    assert shown["receivers"] == [{"name": "hook"}]
    # endsAt in the past: resolved (Alertmanager's semantics), told to the same receiver.
    assert running.post({**firing, "endsAt": _at(-1)}).status_code == 200
    wait_for(
        lambda: ("resolved", firing["labels"]) in running.delivered("Posted"),
        timeout=30,
        what="the resolved notice",
    )
    assert running.delivered("Posted") == [
        ("firing", firing["labels"]),
        ("resolved", firing["labels"]),
    ]
    assert running.get("/api/v2/alerts") == []


def test_an_alert_not_sent_again_resolves_after_resolve_timeout(running):
    # No endsAt: it ends at now + resolve_timeout (2s here) unless sent again.
    assert running.post({"labels": {"alertname": "Forgotten"}}).status_code == 200
    wait_for(
        lambda: [s for s, _ in running.delivered("Forgotten")] == ["firing", "resolved"],
        timeout=30,
        what="firing, then resolved at its endsAt",
    )


def test_received_alerts_are_inhibited_and_silenced_and_amtool_shows_it(running):
    require_alertmanager()
    later = _at(3600)  # past resolve_timeout (2s here) while the test looks
    warning = {"labels": {"alertname": "Disk", "severity": "warning", "host": "a"}, "endsAt": later}
    critical = {
        "labels": {"alertname": "Disk", "severity": "critical", "host": "b"},
        "endsAt": later,
    }
    quiet = {"labels": {"alertname": "Quiet", "severity": "warning"}, "endsAt": later}
    running.amtool("silence", "add", "alertname=Quiet", "--comment=c", "--author=a")
    assert running.post(warning, critical, quiet).status_code == 200
    wait_for(lambda: running.delivered("Disk"), timeout=30, what="the Disk notice")
    views = {a["labels"].get("host", "-"): a for a in running.get("/api/v2/alerts")}
    assert views["a"]["status"]["inhibitedBy"] == [views["b"]["fingerprint"]]
    assert views["a"]["status"]["state"] == "suppressed"
    assert views["-"]["status"]["silencedBy"] and views["-"]["status"]["state"] == "suppressed"

    # amtool: the active ones by default; -i -s the suppressed ones only; -a -i -s every one.
    def hosts(*flags: str) -> list[str]:
        shown = json.loads(running.amtool("alert", "query", *flags, "-o", "json"))
        return sorted(a["labels"].get("host", "-") for a in shown)

    assert hosts() == ["b"]
    assert hosts("-i", "-s") == ["-", "a"]
    assert hosts("-a", "-i", "-s") == ["-", "a", "b"]
    assert hosts("-i") == ["a"]
    suppressed = running.get("/api/v2/alerts", active="false", silenced="false")
    assert [a["labels"]["host"] for a in suppressed] == ["a"]
    [group] = running.get("/api/v2/alerts/groups", filter="alertname=Disk")
    assert group["labels"] == {"alertname": "Disk"} and group["receiver"] == {"name": "hook"}
    assert running.get("/api/v2/alerts/groups", receiver="nobody") == []
    # Delivered: the critical only; the inhibited warning and the silenced alert are not.
    assert [labels["host"] for _, labels in running.delivered("Disk")] == ["b"]
    assert running.delivered("Quiet") == []


@pytest.mark.slow
def test_a_real_prometheus_alert_is_delivered_by_the_monitor(running, tmp_path):
    require_prometheus()
    require_alertmanager()
    (tmp_path / "prom-rules.yml").write_text(
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n"
        "      - alert: FromPrometheus\n        expr: vector(1)\n"
        "        labels: {severity: critical}\n        annotations: {summary: sent by Prometheus}\n"
    )
    address = running.url.removeprefix("http://")
    (tmp_path / "prom.yml").write_text(
        "global: {evaluation_interval: 1s}\n"
        "rule_files: [prom-rules.yml]\n"
        "alerting:\n  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['{address}']}}]\n"
        f"      authorization: {{credentials: {TOKEN}}}\n"
    )
    prometheus = subprocess.Popen(
        [
            shutil.which("prometheus"),
            f"--config.file={tmp_path / 'prom.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{free_port()}",
            # The first evaluation may come before the monitor is discovered as a target:
            # re-send every second rather than after the default minute.
            "--rules.alert.resend-delay=1s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:

        def arrived():
            assert prometheus.poll() is None, "prometheus exited"
            return running.delivered("FromPrometheus")

        [(status, labels)] = wait_for(arrived, timeout=90, what="Prometheus' alert delivered")
        assert status == "firing"
        assert labels == {"alertname": "FromPrometheus", "severity": "critical"}
        [request] = [r for r in running.receiver.requests if b"FromPrometheus" in r.body]
        body = json.loads(request.body)
        assert body["receiver"] == "hook" and body["version"] == "4"
        assert "/graph?g0.expr=vector" in body["alerts"][0]["generatorURL"]
        [shown] = json.loads(
            running.amtool("alert", "query", "alertname=FromPrometheus", "-o", "json")
        )
        assert shown["annotations"] == {"summary": "sent by Prometheus"}
        assert shown["receivers"] == [{"name": "hook"}]
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
