"""The Prometheus endpoint: who may read it, and what it answers."""

import pytest
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

URL = "/api/monitoring/prometheus/"
TOKEN = "s3cret-token"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _token(settings):
    settings.MONITORING_TOKEN = TOKEN


def names(body: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(body.decode())}


def test_no_credentials_is_401_without_data(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"http_requests" not in response.content
    assert b"# TYPE" not in response.content


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic czNjcmV0", f"Bearer {TOKEN}x"])
def test_wrong_credentials_are_401_without_data(client, header):
    response = client.get(URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"# TYPE" not in response.content


def test_non_staff_session_is_403(client):
    client.force_login(get_user_model().objects.create_user("shopper", password="x" * 12))
    assert client.get(URL).status_code == 403


def test_token_reads_text_format(client):
    client.get("/api/nowhere/")  # at least one request observed
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert {"http_requests", "http_errors", "http_request_duration_seconds"} <= names(
        response.content
    )


def test_staff_session_reads(client):
    staff = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True)
    client.force_login(staff)
    assert client.get(URL).status_code == 200


def test_without_a_configured_token_a_bearer_is_refused(client, settings):
    settings.MONITORING_TOKEN = ""
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_only_get(client):
    assert client.post(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_application_json_reports_the_same_counters(client):
    from tests.monitoring.metric_values import sample_value

    client.get("/api/nowhere/")
    body = client.get("/api/monitoring/application/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert body["category"] == "application"
    # The JSON request itself is counted once it has answered.
    assert body["http"]["requests_total"] == sample_value("http_requests_total") - 1
    assert body["http"]["client_errors_total"] >= 1
    assert set(body["active_users"]) == {"5m", "15m"}
    assert {"accounts", "orders", "payments", "celery"} <= set(body)
    assert client.get("/api/monitoring/application/").status_code in (401, 403)
