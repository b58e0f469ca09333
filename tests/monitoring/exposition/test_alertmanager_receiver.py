"""The app's receiver for real Alertmanager: the webhook document real Alertmanager 0.25 sent
(captured by test_webhook_alertmanager's fixture) is recorded in the dashboard records."""

from __future__ import annotations

import json

import pytest

from monitoring.monitor.state import StateStore
from tests.monitoring.notify.channels.servers import HttpReceiver
from tests.monitoring.notify.channels.test_webhook_alertmanager import (  # noqa: F401 (fixture)
    alertmanager_body,
)
from tests.monitoring.notify.real_alertmanager import alertmanager, call  # noqa: F401 (fixture)
from tests.wait import wait_for

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


def test_a_real_alertmanager_delivers_sms_and_dashboard_through_the_app(
    live_server,
    settings,
    monkeypatch,
    tmp_path,
    alertmanager,  # noqa: F811 (the fixture)
):
    sms_api = HttpReceiver()
    monkeypatch.setenv("SMS_API_URL", sms_api.url)
    monkeypatch.setenv("SMS_ACCOUNT_SID", "AC42")
    monkeypatch.setenv("SMS_AUTH_TOKEN", "sms-secret")
    monkeypatch.setenv("SMS_FROM", "+15550000000")
    monkeypatch.setenv("ONCALL_SMS_TO", "+15551112222")
    app = live_server.url.replace("localhost", "127.0.0.1") + "/api/monitoring/alertmanager"
    auth = f"http_config: {{authorization: {{credentials: {TOKEN}}}}}"
    (tmp_path / "am.yml").write_text(
        "route: {receiver: oncall, group_by: [alertname], group_wait: 0s}\n"
        "receivers:\n"
        "  - name: oncall\n"
        "    webhook_configs:\n"
        f"      - {{url: {app}/sms, {auth}}}\n"
        f"      - {{url: {app}/dashboard, {auth}}}\n"
    )
    try:
        url = alertmanager(tmp_path / "am.yml")
        alert = {
            "labels": {"alertname": "HighPaymentFailureRate", "severity": "critical"},
            "annotations": {"summary": "Many payments are failing"},
        }
        call(f"{url}/api/v2/alerts", [alert])
        [sms] = wait_for(lambda: sms_api.requests, timeout=60, what="the SMS API called")
        assert b"HighPaymentFailureRate" in sms.body and b"%2B15551112222" in sms.body

        def recorded():
            store = StateStore(tmp_path / "state.sqlite3")
            try:
                return store.dashboard_notifications()
            finally:
                store.close()

        [record] = wait_for(recorded, timeout=60, what="the dashboard record")
        assert record.receiver == "oncall" and record.status == "firing"
    finally:
        sms_api.close()
