"""Every error under /api/ is JSON; 401 (with a challenge) for a missing or bad token, 403 for
a valid user without permission. (The database-down 503: tests/shop/test_database_outage.py.)"""

import pytest
from django.test import override_settings
from django.urls import path

from tests.monitoring.health.conftest import TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def _fails(request):
    raise RuntimeError("a bug")


# A URL conf with a view that fails with an exception nothing handles.
urlpatterns = [path("api/broken/", _fails)]


def _json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"] and body["code"]
    return body


def test_an_unmatched_api_path_is_a_json_404(client):
    assert _json_error(client.get("/api/orders/null,null/"), 404)["code"] == "not_found"


def test_a_method_a_plain_view_refuses_is_a_json_405_keeping_allow(client):
    response = client.post("/api/monitoring/prometheus/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    _json_error(response, 405)
    assert response["Allow"] == "GET"


@override_settings(ROOT_URLCONF=__name__)
def test_an_uncaught_exception_is_a_json_500_without_internals(client):
    client.raise_request_exception = False
    response = client.get("/api/broken/")
    assert _json_error(response, 500)["code"] == "server_error"
    assert b"a bug" not in response.content and b"Traceback" not in response.content


def test_outside_the_api_django_pages_are_left_alone(client):
    response = client.get("/nowhere/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("url", ["/api/orders/", "/api/catalog/products/"])
def test_a_bad_token_is_401_with_a_challenge_even_on_public_reads(anon_client, url):
    response = anon_client.get(url, HTTP_AUTHORIZATION="Token 0123456789abcdef")
    _json_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_a_missing_token_is_401_with_a_challenge(anon_client):
    response = anon_client.post("/api/orders/", {"items": []}, format="json")
    _json_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_a_valid_user_without_permission_is_403(customer_client):
    response = customer_client.post(
        "/api/catalog/categories/", {"name": "X", "slug": "x"}, format="json"
    )
    assert _json_error(response, 403)["code"] == "permission_denied"


@pytest.mark.parametrize("url", ["/api/health/detailed/", "/api/monitoring/system/"])
def test_monitoring_refusals_401_for_nobody_403_for_a_customer(
    client, customer_client, settings, url
):
    settings.MONITORING_TOKEN = TOKEN
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"}):
        response = client.get(url, **headers)
        _json_error(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")
    _json_error(customer_client.get(url), 403)
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code in (200, 503)
