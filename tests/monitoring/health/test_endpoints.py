"""The health endpoints over HTTP: answers, status codes, authentication, what the public sees."""

import importlib
import json

import pytest

from tests.monitoring.health.conftest import TOKEN

pytestmark = pytest.mark.django_db

PROTECTED = [
    "/api/health/detailed/",
    "/api/health/database/",
    "/api/health/redis/",
    "/api/health/celery/",
    "/api/monitoring/system/",
    "/api/monitoring/database/",
    "/api/monitoring/redis/",
    "/api/monitoring/application/",
    "/api/monitoring/business/",
]


def test_basic_health_is_ok_and_says_nothing_else(client, health_settings):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_basic_health_is_503_when_the_database_is_unreachable(
    client, broken_database, refused_port
):
    broken_database(refused_port)
    response = client.get("/api/health/")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    body = response.content.decode()
    for leak in (str(refused_port), "127.0.0.1", "postgres", "refused", "version"):
        assert leak not in body


@pytest.mark.parametrize("url", PROTECTED)
def test_protected_endpoints_refuse_anonymous_readers(client, health_settings, url):
    response = client.get(url)
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.parametrize("url", PROTECTED)
def test_protected_endpoints_refuse_a_wrong_token(client, health_settings, url):
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    assert response.status_code in (401, 403)


def test_non_staff_user_is_refused(client, django_user_model, health_settings):
    user = django_user_model.objects.create_user("shopper", password="x-long-password-1")
    client.force_login(user)
    assert client.get("/api/health/detailed/").status_code == 403


def test_staff_session_reads_detailed_health(admin_client, health_settings):
    response = admin_client.get("/api/health/detailed/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    database = body["components"]["database"]
    assert database["status"] == "ok"
    assert database["vendor"] in ("sqlite", "postgresql")
    assert database["server_version"]
    assert database["latency_ms"] >= 0
    # Without REDIS_URL, Redis and Celery are switched off, not failing.
    assert body["components"]["redis"]["status"] == "disabled"
    assert body["components"]["celery"]["status"] == "disabled"
    assert 0 <= body["metrics"]["cpu_usage_percent"] <= 100
    assert 0 < body["metrics"]["disk_usage_percent"]["/"] < 100


@pytest.mark.parametrize(
    ("component", "status"), [("database", "ok"), ("redis", "disabled"), ("celery", "disabled")]
)
def test_component_endpoints(reader, health_settings, component, status):
    response = reader(f"/api/health/{component}/")
    assert response.status_code == 200
    body = response.json()
    assert body["component"] == component
    assert body["status"] == status


@pytest.mark.django_db(transaction=True)  # collectors read in their own thread
def test_json_metric_endpoints_answer(reader, health_settings):
    bodies = {}
    for url in PROTECTED[4:]:
        response = reader(url)
        assert response.status_code == 200, url
        bodies[url.split("/")[-2]] = json.loads(response.content)
    assert 0 <= bodies["system"]["cpu_usage_percent"] <= 100
    assert bodies["database"]["server_version"]
    assert bodies["business"]["stock_quantity"] == {}
    assert bodies["redis"]["status"] == "disabled"
    application = bodies["application"]["metrics"]
    system_reads = [
        s["value"]
        for s in application["http_requests"]["series"]
        if s["labels"].get("route") == "/api/monitoring/system/" and s["labels"]["status"] == "200"
    ]
    assert system_reads and system_reads[0] >= 1  # the request made above, counted
    assert application["celery_tasks"]["type"] == "counter"


def test_production_never_redirects_health_probes_to_https(client, health_settings, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "production-like-secret-key-for-this-test-only-0123456789")
    monkeypatch.setenv("SECURE_SSL_REDIRECT", "true")
    production = importlib.import_module("config.settings.production")
    health_settings.SECURE_SSL_REDIRECT = production.SECURE_SSL_REDIRECT
    health_settings.SECURE_REDIRECT_EXEMPT = production.SECURE_REDIRECT_EXEMPT
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.get("/api/health/").status_code == 200
    assert client.get("/api/health/detailed/", **bearer).status_code == 200
    assert client.get("/api/health/database/", **bearer).status_code == 200
    # The redirect itself is on: other plain-HTTP requests are sent to HTTPS.
    assert client.get("/api/monitoring/system/", **bearer).status_code == 301


def test_a_failed_probe_is_a_warning_not_an_error(
    client, reader, broken_database, refused_port, caplog
):
    """A probe that sees the database down logs a WARNING naming it: an ERROR per probe would
    count towards HighLogErrorRate (log_errors_total) beside the DatabaseDown alert."""
    from tests.monitoring.metric_values import sample_value

    broken_database(refused_port)
    errors_before = sample_value("log_errors_total", logger="django.request") or 0
    with caplog.at_level("INFO"):
        assert client.get("/api/health/").status_code == 503
        assert reader("/api/health/detailed/").status_code == 503
        assert reader("/api/health/database/").status_code == 503
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    warnings = [r for r in caplog.records if r.name == "monitoring.health"]
    assert [r.levelname for r in warnings] == ["WARNING"] * 3
    assert all("database" in r.getMessage() for r in warnings)
    assert (sample_value("log_errors_total", logger="django.request") or 0) == errors_before
