"""Maintenance mode (maintenance/): who gets the 503 and in which shape, and the command.

Customers get an HTML page, or under /api/ the API's error body with code "maintenance", both
503 with Retry-After; health, monitoring, the admin and staff (session or token) are served.
(Every gunicorn worker switching: test_maintenance_mode_gunicorn.py.)"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from maintenance import mode
from tests.monitoring.health.conftest import TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.db]


@pytest.fixture(autouse=True)
def flag(settings, tmp_path):
    settings.MAINTENANCE_FILE = tmp_path / "maintenance.json"
    settings.MONITORING_TOKEN = TOKEN
    yield settings.MAINTENANCE_FILE
    mode.switch_off()


@pytest.fixture
def on():
    return mode.switch_on(retry_after=120, message="Back after the upgrade.")


def _api_503(response) -> dict:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "120"
    body = response.json()
    from shop.api import ErrorSerializer  # here: shop.api needs the app loaded

    # The shape the OpenAPI schema documents for every 503 (shop.schema, shop.api.ErrorSerializer).
    assert set(body) == set(ErrorSerializer.fields) == {"detail", "code"}
    assert body == {"detail": "Back after the upgrade.", "code": "maintenance"}
    return body


def test_off_the_shop_serves(anon_client):
    assert anon_client.get("/api/catalog/products/").status_code == 200


@pytest.mark.usefixtures("on")
def test_an_anonymous_api_call_is_a_json_503(anon_client):
    _api_503(anon_client.get("/api/catalog/products/"))
    _api_503(anon_client.post("/api/accounts/register/", {}, format="json"))


@pytest.mark.usefixtures("on")
def test_a_customer_with_a_token_is_refused_too(customer_client):
    _api_503(customer_client.get("/api/orders/"))


@pytest.mark.usefixtures("on")
def test_a_page_is_an_accessible_html_503(client):
    response = client.get("/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "120"
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert '<html lang="en">' in html and "<title>" in html and "<h1>" in html
    assert "Back after the upgrade." in html and "about 2 minutes" in html


@pytest.mark.usefixtures("on")
def test_staff_by_token_are_served(staff_client):
    assert staff_client.get("/api/orders/").status_code == 200


@pytest.mark.usefixtures("on")
def test_staff_by_session_are_served(staff):
    client = APIClient()
    client.force_login(staff)
    assert client.get("/api/orders/").status_code == 200


@pytest.mark.usefixtures("on")
def test_an_inactive_staff_token_is_a_customer(staff, staff_client):
    staff.is_active = False
    staff.save()
    assert staff_client.get("/api/catalog/products/").status_code == 503


@pytest.mark.usefixtures("on")
def test_health_admin_and_monitoring_keep_working(client, settings):
    settings.HEALTH_BASIC_CACHE_SECONDS = 0
    assert client.get("/api/health/").status_code == 200
    assert client.get("/admin/login/").status_code == 200
    scrape = client.get("/api/monitoring/prometheus/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert scrape.status_code == 200
    text = scrape.content.decode()
    assert "# TYPE maintenance_mode gauge" in text and "\nmaintenance_mode 1.0\n" in text


def test_the_gauge_is_0_when_off(client):
    scrape = client.get("/api/monitoring/prometheus/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert "\nmaintenance_mode 0.0\n" in scrape.content.decode()


def test_a_flag_file_it_cannot_parse_still_means_on_with_the_defaults(anon_client, flag):
    flag.write_text("{half a")
    response = anon_client.get("/api/catalog/products/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(mode.DEFAULT_RETRY_AFTER)
    assert response.json()["detail"] == mode.DEFAULT_MESSAGE


def test_the_refusal_is_counted_under_its_route(anon_client, on):
    from monitoring.http.middleware import route_of

    response = anon_client.get("/api/catalog/products/")
    assert route_of(response.wsgi_request) == "/api/catalog/products/"


def _command(*args) -> str:
    out = StringIO()
    call_command("maintenance_mode", *args, stdout=out)
    return out.getvalue()


def test_the_command_switches_on_off_and_shows_the_state(flag, anon_client):
    assert "maintenance mode: off" in _command("status")
    out = _command("on", "--retry-after", "30", "--message", "Moving house.")
    assert "maintenance mode: on" in out and "Retry-After 30 s" in out and "Moving house." in out
    assert json.loads(flag.read_text())["retry_after"] == 30
    response = anon_client.get("/api/catalog/products/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    since = mode.read_now().since
    _command("on", "--retry-after", "90")  # a new Retry-After; still on since the first switch
    assert mode.read_now().since == since and mode.read_now().retry_after == 90
    assert "maintenance mode: off" in _command("off")
    assert not flag.exists()
    assert anon_client.get("/api/catalog/products/").status_code == 200
    _command("off")  # off again: no error


def test_the_command_refuses_a_negative_retry_after(flag):
    with pytest.raises(CommandError):
        _command("on", "--retry-after", "-1")
    assert not flag.exists()


@pytest.mark.usefixtures("on")
def test_a_refusal_is_not_logged_as_a_server_error(anon_client, caplog):
    anon_client.get("/api/catalog/products/")
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert [r for r in caplog.records if r.name == "access" and "503" in r.getMessage()]


def test_a_process_stats_the_flag_at_most_once_per_interval(settings, flag):
    settings.MAINTENANCE_CHECK_INTERVAL = 3600
    assert not mode.current().enabled
    flag.write_text("{}")  # switched by another process: not seen before the interval is over
    assert not mode.current().enabled
    settings.MAINTENANCE_CHECK_INTERVAL = 0
    assert mode.current().enabled


@pytest.mark.usefixtures("on")
def test_exempt_paths_without_their_trailing_slash_are_exempt_too(client):
    assert client.get("/api/health").status_code == 301
    assert client.get("/admin").status_code == 301
    assert client.get("/api/healthy/").status_code == 503
