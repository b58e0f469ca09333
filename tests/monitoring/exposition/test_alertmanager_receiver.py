"""The app's receiver for real Alertmanager: the webhook document real Alertmanager 0.25 sent
(captured by test_webhook_alertmanager's fixture) is recorded in the dashboard records, and its
alerts in the alert history."""

from __future__ import annotations

import json

import pytest

from monitoring.monitor.state import StateStore
from monitoring.rules.alerting import fingerprint
from monitoring.rules.gofmt import parse_rfc3339_ms
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


def post(client, path: str, body: bytes, token: str | None = TOKEN, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(path, body, content_type="application/json", **headers, **extra)


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
    # The history is keyed by Alertmanager's fingerprint of the label set: it equals ours.
    [fired] = history(tmp_path)
    assert fired.fingerprint == alertmanager_body["alerts"][0]["fingerprint"]
    assert (fired.from_state, fired.to_state) == ("inactive", "firing")


def history(tmp_path) -> list:
    store = StateStore(tmp_path / "state.sqlite3")
    try:
        return store.alert_transitions_after(after_id=0)
    finally:
        store.close()


def webhook(status: str, alerts: list[dict], receiver: str = "dashboard") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "receiver": receiver,
            "groupKey": '{}:{alertname="HighPaymentFailureRate"}',
            "status": status,
            "alerts": alerts,
            "groupLabels": {"alertname": "HighPaymentFailureRate"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 0,
        }
    ).encode()


def test_firing_repeated_and_resolved_webhooks_record_one_firing_and_one_resolution(
    client, monkeypatch, tmp_path
):
    """Alertmanager re-sends a firing alert at every repeat_interval, to every receiver of its
    routes (here the dashboard and, through the SMS path, on-call), and retries: the history
    gets the episode's firing once, its resolution once, each at Alertmanager's times."""
    sms_api = HttpReceiver()
    for name, value in {
        "SMS_API_URL": sms_api.url,
        "SMS_ACCOUNT_SID": "AC42",
        "SMS_AUTH_TOKEN": "sms-secret",
        "SMS_FROM": "+15550000000",
        "ONCALL_SMS_TO": "+15551112222",
    }.items():
        monkeypatch.setenv(name, value)
    labels = {"alertname": "HighPaymentFailureRate", "severity": "critical", "team": "payments"}
    alert = {
        "labels": labels,
        "annotations": {"summary": "Many payments are failing"},
        "startsAt": "2026-12-05T00:00:00.123Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint(labels),
    }
    resolved = {**alert, "status": "resolved", "endsAt": "2026-12-05T00:09:30Z"}
    firing = webhook("firing", [{**alert, "status": "firing"}])
    try:
        for path, body in [
            ("/api/monitoring/alertmanager/dashboard", firing),
            (
                "/api/monitoring/alertmanager/sms",
                webhook("firing", [{**alert, "status": "firing"}], "oncall"),
            ),
            ("/api/monitoring/alertmanager/dashboard", firing),  # repeat_interval
            ("/api/monitoring/alertmanager/dashboard", webhook("resolved", [resolved])),
            ("/api/monitoring/alertmanager/sms", webhook("resolved", [resolved], "oncall")),
            ("/api/monitoring/alertmanager/", webhook("resolved", [resolved])),  # a retry
        ]:
            response = post(client, path, body)
            assert response.status_code == 200, response.content
    finally:
        sms_api.close()
    start, end = parse_rfc3339_ms(alert["startsAt"]), parse_rfc3339_ms(resolved["endsAt"])
    assert [
        (t.fingerprint, t.from_state, t.to_state, t.at_ms, t.resolved_at_ms)
        for t in history(tmp_path)
    ] == [
        (fingerprint(labels), "inactive", "firing", start, None),
        (fingerprint(labels), "firing", "inactive", end, end),
    ]
    store = StateStore(tmp_path / "state.sqlite3")
    try:
        assert store.alerts_active() == []
        assert len(store.dashboard_notifications()) == 2  # the firing and the resolved one
    finally:
        store.close()


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


def test_a_group_of_thousands_of_alerts_is_recorded_not_refused(client, tmp_path):
    """Alertmanager sends a whole group in one webhook (no `max_alerts` on the shipped ones):
    LowStock over a large catalog is thousands of alerts, more than Django's 2.5 MB default
    for a request body. Refused (4xx), Alertmanager would drop it without retrying."""
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "LowStock",
                "severity": "info",
                "team": "product",
                "product": f"product-{i:05d}",
                "sku": f"SKU-{i:08d}",
                "instance": "web-1:8000",
                "job": "pasargad-prints",
            },
            "annotations": {
                "summary": f"Low stock for product-{i:05d}",
                "description": f"product-{i:05d} has 3 left in stock (threshold 10)",
                "runbook_url": "docs/runbooks/LowStock.md",
            },
            "startsAt": "2026-12-05T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=product_stock_quantity+%3C%3D+10",
            "fingerprint": f"{i:016x}",
        }
        for i in range(6000)
    ]
    body = json.dumps(
        {
            "version": "4",
            "receiver": "dashboard",
            "groupKey": '{}/{}:{alertname="LowStock", team="product"}',
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"alertname": "LowStock", "team": "product"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 0,
        }
    ).encode()
    assert len(body) > 2.5 * 1024 * 1024
    response = post(client, "/api/monitoring/alertmanager/dashboard", body)
    assert response.status_code == 200, response.content
    store = StateStore(tmp_path / "state.sqlite3")
    [record] = store.dashboard_notifications()
    store.close()
    assert len(record.body["alerts"]) == 6000
    store = StateStore(tmp_path / "state.sqlite3")
    try:
        assert len(store.alerts_active()) == 6000  # each in the history, firing
    finally:
        store.close()


def test_a_body_past_the_bound_is_413_before_it_is_read(client):
    from monitoring.exposition.alertmanager import MAX_WEBHOOK_BYTES

    response = post(
        client, "/api/monitoring/alertmanager/", b"{}", CONTENT_LENGTH=str(MAX_WEBHOOK_BYTES + 1)
    )
    assert response.status_code == 413 and "larger than" in response.json()["error"]
