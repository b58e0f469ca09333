"""The app's receiver for real Alertmanager: the webhook document real Alertmanager 0.25 sent
(captured by test_webhook_alertmanager's fixture) is recorded in the dashboard records."""

from __future__ import annotations

import json

import pytest

from monitoring.monitor.state import StateStore
from tests.monitoring.notify.channels.test_webhook_alertmanager import (  # noqa: F401 (fixture)
    alertmanager_body,
)

TOKEN = "receiver-token"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch, tmp_path):
    settings.MONITORING_TOKEN = TOKEN
    monkeypatch.setenv("MONITOR_STATE_PATH", str(tmp_path / "state.sqlite3"))


def post(client, path: str, body: bytes, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(path, body, content_type="application/json", **headers)


def test_alertmanagers_webhook_is_recorded_once_for_the_dashboard(
    client,
    tmp_path,
    alertmanager_body,  # noqa: F811 (the imported fixture)
):
    body = json.dumps(alertmanager_body).encode()
    for path in ("/api/monitoring/alertmanager/", "/api/monitoring/alertmanager/dashboard"):
        response = post(client, path, body)
        assert response.status_code == 200, response.content
    store = StateStore(tmp_path / "state.sqlite3")
    [record] = store.dashboard_notifications()  # the same notification twice: one row
    store.close()
    assert record.status == "firing" and record.severity == "critical"
    assert record.body["alerts"][0]["labels"]["alertname"] == "HighPaymentFailureRate"


def test_no_token_is_401_and_bad_json_is_400_with_the_reason(client):
    assert post(client, "/api/monitoring/alertmanager/", b"{}", token=None).status_code == 401
    assert post(client, "/api/monitoring/alertmanager/", b"{}", token="wrong").status_code == 401
    response = post(client, "/api/monitoring/alertmanager/", b"{not json")
    assert response.status_code == 400 and "not an Alertmanager webhook" in response.json()["error"]
    response = post(client, "/api/monitoring/alertmanager/", b'{"version": "3"}')
    assert response.status_code == 400 and "version '3'" in response.json()["error"]


def test_sms_without_the_sms_settings_is_503_so_alertmanager_retries(client, monkeypatch):
    monkeypatch.delenv("SMS_API_URL", raising=False)
    body = json.dumps(
        {
            "version": "4",
            "receiver": "oncall",
            "groupKey": "{}:{}",
            "status": "firing",
            "alerts": [],
        }
    ).encode()
    response = post(client, "/api/monitoring/alertmanager/sms", body)
    assert response.status_code == 503 and "SMS_API_URL" in response.json()["error"]
