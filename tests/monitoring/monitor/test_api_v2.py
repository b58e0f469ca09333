"""The Alertmanager API v2 subset on the monitor's port, checked with the real client: amtool
0.25 (Debian's prometheus-alertmanager), authenticating with the monitor's bearer token through
`--http.config.file`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from monitoring.monitor.api import api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from tests.monitoring.monitor.exporter import Exporter
from tests.monitoring.monitor.test_self_metrics import _families
from tests.monitoring.notify.real_alertmanager import alertmanager  # noqa: F401 (a fixture)
from tests.services import require_alertmanager

TOKEN = "v2-test-token"
BODY = """\
# TYPE cpu_usage_percent gauge
cpu_usage_percent{host="web1"} 95
cpu_usage_percent{host="web2"} 97
"""
RULES = """\
groups:
  - name: system
    rules:
      - alert: HighCpuUsage
        expr: cpu_usage_percent > 85
        labels: {severity: warning, team: devops}
        annotations: {summary: "High CPU usage detected"}
"""
NOTIFY = """\
route:
  receiver: email
  group_by: [alertname]
  routes:
    - matchers: [severity="critical"]
      receiver: pager
      continue: true
receivers:
  - name: email
  - name: pager
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname]
"""


class Running:
    def __init__(self, tmp: Path, exporter: Exporter):
        self.tmp = tmp
        (tmp / "rules.yml").write_text(RULES)
        (tmp / "alertmanager.yml").write_text(NOTIFY)
        (tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 15s, evaluation_interval: 15s}\n"
            "rule_files: [rules.yml]\n"
            f"scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{exporter.address}']}}]\n"
        )
        (tmp / "http.yml").write_text(f"authorization:\n  credentials: {TOKEN}\n")
        self.start()

    def start(self) -> None:
        env = {
            "MONITOR_STATE_PATH": str(self.tmp / "state.sqlite3"),
            "NOTIFY_CONFIG": str(self.tmp / "alertmanager.yml"),
        }
        self.monitor = Monitor(
            config_path=self.tmp / "prometheus.yml", settings=settings_from_env(env)
        )
        self.monitor.cycle_once()
        self.server = api_server_start(self.monitor, host="127.0.0.1", port=0, token=TOKEN)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.monitor.stop()

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

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def running(tmp_path):
    require_alertmanager()
    with Exporter() as exporter:
        exporter.body = BODY
        running = Running(tmp_path, exporter)
        yield running
        running.stop()


def test_amtool_queries_alerts_adds_queries_and_expires_silences(running):
    alerts = json.loads(running.amtool("alert", "query", "-o", "json"))
    assert sorted(a["labels"]["host"] for a in alerts) == ["web1", "web2"]
    assert {a["status"]["state"] for a in alerts} == {"active"}
    assert alerts[0]["receivers"] == [{"name": "email"}]

    silence_id = running.amtool(
        "silence", "add", "alertname=HighCpuUsage", 'host=~"web1|web3"',
        "--comment=maintenance", "--author=ops", "--duration=1h",
    ).strip()  # fmt: skip
    assert running.amtool("silence", "query", "-q").split() == [silence_id]
    # A filter names the silence's own matchers (Alertmanager's semantics), not labels.
    assert running.amtool("silence", "query", "-q", 'host=~"web1|web3"').split() == [silence_id]
    assert running.amtool("silence", "query", "-q", "host=web1").split() == []
    [shown] = json.loads(running.amtool("silence", "query", "-o", "json"))
    assert (shown["createdBy"], shown["comment"], shown["status"]["state"]) == (
        "ops",
        "maintenance",
        "active",
    )
    assert {(m["name"], m["value"], m["isRegex"]) for m in shown["matchers"]} == {
        ("alertname", "HighCpuUsage", False),
        ("host", "web1|web3", True),
    }
    # amtool shows unsilenced alerts by default; -s adds the silenced ones.
    assert [
        a["labels"]["host"] for a in json.loads(running.amtool("alert", "query", "-o", "json"))
    ] == ["web2"]
    every = json.loads(running.amtool("alert", "query", "-s", "-o", "json"))
    silenced = {a["labels"]["host"]: a["status"] for a in every}
    assert silenced["web1"] == {
        "inhibitedBy": [],
        "silencedBy": [silence_id],
        "state": "suppressed",
    }

    # Extending an active silence keeps its id (Alertmanager updates it in place).
    # (amtool 0.25's `update -q` prints a Go pointer, so the ids are read back from the API.)
    running.amtool("silence", "update", "--duration=3h", silence_id)
    assert running.amtool("silence", "query", "-q").split() == [silence_id]
    extended = running.api("GET", f"/api/v2/silence/{silence_id}").json()
    assert extended["endsAt"] > shown["endsAt"] and extended["startsAt"] == shown["startsAt"]

    # Silences survive a restart of the monitor (its state store).
    running.stop()
    running.start()
    assert running.amtool("silence", "query", "-q").split() == [silence_id]

    running.amtool("silence", "expire", silence_id)
    assert running.amtool("silence", "query", "-q").split() == []
    assert running.amtool("silence", "query", "--expired", "-q").split() == [silence_id]
    assert (
        running.api("GET", f"/api/v2/silence/{silence_id}").json()["status"]["state"] == "expired"
    )


def test_posted_alerts_are_received_routed_and_inhibited(running):
    critical = {"labels": {"alertname": "HighCpuUsage", "severity": "critical", "host": "db"}}
    assert running.api("POST", "/api/v2/alerts", json=[critical]).status_code == 200
    # Into the pipeline, beside the monitor's own two.
    held = {h.alert.labels.get("host") for h in running.monitor.notifier.firing()}
    assert held == {"db", "web1", "web2"}
    views = {a["labels"]["host"]: a for a in running.api("GET", "/api/v2/alerts").json()}
    # As in Alertmanager: the root's receiver only takes what no child route matched.
    assert views["db"]["receivers"] == [{"name": "pager"}]
    assert views["web1"]["status"]["inhibitedBy"] == [views["db"]["fingerprint"]]
    only_active = running.api("GET", "/api/v2/alerts", params={"inhibited": "false"}).json()
    assert [a["labels"]["host"] for a in only_active] == ["db"]
    pager = running.api("GET", "/api/v2/alerts", params={"receiver": "pag.*"}).json()
    assert [a["labels"]["host"] for a in pager] == ["db"]
    groups = running.api("GET", "/api/v2/alerts/groups").json()
    assert sorted((g["receiver"]["name"], len(g["alerts"])) for g in groups) == [
        ("email", 2),
        ("pager", 1),
    ]
    assert groups[0]["labels"] == {"alertname": "HighCpuUsage"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "parsing body"),
        (b'{"labels": {}}', "JSON list"),
        (b'[{"labels": {}}]', "at least one label pair required"),
        (b'[{"labels": {"a-b": "c"}}]', 'invalid name "a-b"'),
        (
            b'[{"labels": {"a": "b"}, "startsAt": "2030-01-01T00:00:00Z",'
            b' "endsAt": "2029-01-01T00:00:00Z"}]',
            "start time must be before end time",
        ),
    ],
)
def test_bad_alerts_get_400_with_the_reason(running, body, reason):
    response = running.api("POST", "/api/v2/alerts", content=body)
    assert response.status_code == 400 and reason in response.json()


def test_status_shows_the_loaded_configuration_and_everything_needs_the_token(running):
    status = running.api("GET", "/api/v2/status").json()
    assert status["cluster"] == {"peers": [], "status": "disabled"}
    assert status["config"]["original"] == NOTIFY
    assert status["versionInfo"]["version"] == "0.25.0"
    assert httpx.get(running.url + "/api/v2/silences").status_code == 401
    assert running.amtool("config", "show").strip().startswith("route:")


def test_bad_silences_get_alertmanagers_answers(running):
    body = {
        "matchers": [{"name": "a", "value": ".*", "isRegex": True}],
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": "2030-01-01T01:00:00Z",
        "createdBy": "x",
        "comment": "y",
    }
    response = running.api("POST", "/api/v2/silences", json=body)
    assert response.status_code == 400 and "must not match the empty string" in response.json()
    response = running.api(
        "POST", "/api/v2/silences", json={**body, "endsAt": "2029-01-01T00:00:00Z"}
    )
    assert response.json() == "Failed to create silence: start time must be before end time"
    response = running.api("POST", "/api/v2/silences", json={**body, "id": "nope"})
    assert response.status_code == 404
    assert running.api("DELETE", "/api/v2/silence/nope").status_code == 404
    assert running.api("GET", "/api/v2/silence/nope").status_code == 404


def test_amtool_alert_add_posts_an_alert_the_monitor_shows(running):
    running.amtool(
        "alert", "add", "alertname=ByHand", "severity=critical", "--annotation=summary=manual"
    )
    [alert] = json.loads(running.amtool("alert", "query", "alertname=ByHand", "-o", "json"))
    assert alert["annotations"] == {"summary": "manual"}
    assert alert["receivers"] == [{"name": "pager"}]


def test_the_notifier_metrics_count_silences_and_received_alerts(running):
    running.amtool("silence", "add", "alertname=A", "--comment=c", "--author=a")
    running.api("POST", "/api/v2/alerts", json=[{"labels": {"a": "b"}}, {"labels": {}}])
    text = running.api("GET", "/metrics").text
    assert 'alertmanager_silences{state="active"} 1.0' in text
    assert 'alertmanager_alerts_received_total{status="firing",version="v2"} 1.0' in text
    assert 'alertmanager_alerts_invalid_total{version="v2"} 1.0' in text
    assert "alertmanager_config_last_reload_successful 1.0" in text


def test_the_notifier_metrics_are_alertmanagers_own_with_their_types(
    running,
    alertmanager,  # noqa: F811 (the fixture)
):
    # Real Alertmanager 0.25 after the same silence and alerts: each of our alertmanager_*
    # families exists there, with the same type and label names.
    url = alertmanager(running.tmp / "alertmanager.yml")
    for base, headers in ((url, {}), (running.url, {"Authorization": f"Bearer {TOKEN}"})):
        body = {
            "matchers": [{"name": "alertname", "value": "A", "isRegex": False}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "a",
            "comment": "c",
        }
        assert httpx.post(f"{base}/api/v2/silences", json=body, headers=headers).status_code == 200
        alerts = [{"labels": {"a": "b"}}, {"labels": {}}]
        assert httpx.post(f"{base}/api/v2/alerts", json=alerts, headers=headers).status_code == 400
    theirs = _families(httpx.get(f"{url}/metrics").text)
    ours = {
        name: family
        for name, family in _families(running.api("GET", "/metrics").text).items()
        if name.startswith("alertmanager_")
    }
    # The state's four, and the pipeline's four (no notification sent yet: no samples, so
    # their label names are compared where they have some).
    assert len(ours) == 8
    for name, (kind, labels) in ours.items():
        assert name in theirs and theirs[name][0] == kind, name
        assert not labels or labels == theirs[name][1], name


def test_a_broken_notifier_file_is_reported_and_the_monitor_still_runs(tmp_path, caplog):
    (tmp_path / "prometheus.yml").write_text("scrape_configs: []\n")
    broken = "route:\n  receiver: nobody\nreceivers: []\n"
    (tmp_path / "alertmanager.yml").write_text(broken)
    env = {
        "MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3"),
        "NOTIFY_CONFIG": str(tmp_path / "alertmanager.yml"),
    }
    monitor = Monitor(config_path=tmp_path / "prometheus.yml", settings=settings_from_env(env))
    server = api_server_start(monitor, host="127.0.0.1", port=0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        errors = monitor.notifier_state.config.errors
        assert monitor.notifier.route is None and "nobody" in " ".join(errors)
        assert str(tmp_path / "alertmanager.yml") in " ".join(errors)
        assert "notifier configuration" in caplog.text
        # No configuration runs: status shows none (the problems are in the log and metric).
        assert httpx.get(f"{url}/api/v2/status").json()["config"]["original"] == ""
        assert "alertmanager_config_last_reload_successful 0.0" in httpx.get(f"{url}/metrics").text
        body = {
            "matchers": [{"name": "alertname", "value": "A", "isRegex": False}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "a",
            "comment": "c",
        }
        assert httpx.post(f"{url}/api/v2/silences", json=body).status_code == 200
        assert (
            httpx.post(f"{url}/api/v2/alerts", json=[{"labels": {"alertname": "A"}}]).status_code
            == 200
        )
        [alert] = httpx.get(f"{url}/api/v2/alerts").json()
        assert alert["receivers"] == [] and alert["status"]["state"] == "suppressed"
    finally:
        server.shutdown()
        server.server_close()
        monitor.stop()
