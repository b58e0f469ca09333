"""Silences held to a real Alertmanager 0.25: the same silences and alerts are posted to it and
to the monitor's /api/v2; for every alert both must name the same silences in `silencedBy`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitoring.monitor.api import api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor

# name, isEqual, isRegex, value: each silence also needs alertname="X" (a matcher that does
# not match the empty string), so the pairs below may all match "".
SILENCES = [
    [("team", True, False, "devops")],
    [("team", False, False, "devops")],
    [("team", True, True, "dev.*")],
    [("team", False, True, "dev.*")],
    [("instance", True, True, "web-[0-9]+")],
    [("instance", False, True, "")],
    [("env", True, True, "|prod")],
    [("team", True, True, "(?i)DEV")],
    [("instance", True, True, "\\w+\\d")],
    [("env", False, False, "")],
    [("team", True, True, "dev|prod.*"), ("env", False, True, "staging")],
    [("instance", True, True, "web-1|db\\.1")],
]
VALUES = {
    "team": ["devops", "dev", "development", "DEV", "product", ""],
    "instance": ["web-1", "web-22", "web1", "db.1", "dbx1", ""],
    "env": ["prod", "staging", ""],
}


def label_sets() -> list[dict[str, str]]:
    out = []
    for team, instance, env in itertools.product(*VALUES.values()):
        labels = {"alertname": "X", "team": team, "instance": instance, "env": env}
        out.append({k: v for k, v in labels.items() if v})
    return out


def silence_body(matchers) -> dict:
    now = datetime.now(UTC)
    return {
        "matchers": [
            {"name": "alertname", "value": "X", "isRegex": False, "isEqual": True},
            *({"name": n, "isEqual": e, "isRegex": r, "value": v} for n, e, r, v in matchers),
        ],
        "startsAt": now.isoformat().replace("+00:00", "Z"),
        "endsAt": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "createdBy": "test",
        "comment": "agreement",
    }


@pytest.fixture
def monitor_url(tmp_path):
    (tmp_path / "prometheus.yml").write_text("scrape_configs: []\n")
    (tmp_path / "alertmanager.yml").write_text("route: {receiver: r}\nreceivers: [{name: r}]\n")
    env = {
        "MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3"),
        "NOTIFY_CONFIG": str(tmp_path / "alertmanager.yml"),
    }
    monitor = Monitor(config_path=tmp_path / "prometheus.yml", settings=settings_from_env(env))
    server = api_server_start(monitor, host="127.0.0.1", port=0)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    monitor.stop()


def silenced_by(url: str, ids: dict[str, int]) -> dict[tuple, set[int]]:
    alerts = httpx.get(f"{url}/api/v2/alerts", timeout=30).json()
    return {
        tuple(sorted(a["labels"].items())): {ids[s] for s in a["status"]["silencedBy"]}
        for a in alerts
    }


def test_silenced_by_agrees_with_alertmanager(alertmanager, monitor_url, tmp_path):
    (tmp_path / "am.yml").write_text("route: {receiver: r}\nreceivers: [{name: r}]\n")
    am_url = alertmanager(tmp_path / "am.yml")
    alerts = [{"labels": labels} for labels in label_sets()]
    answers = {}
    for url in (am_url, monitor_url):
        ids = {}
        for number, matchers in enumerate(SILENCES):
            response = httpx.post(f"{url}/api/v2/silences", json=silence_body(matchers), timeout=30)
            assert response.status_code == 200, response.text
            ids[response.json()["silenceID"]] = number
        assert httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=30).status_code == 200
        answers[url] = silenced_by(url, ids)
    assert len(answers[am_url]) == len(alerts)
    assert answers[monitor_url] == answers[am_url]
    assert any(answers[am_url].values())  # the silences did silence something
