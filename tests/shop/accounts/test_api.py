import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from tests.shop.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_register_creates_user_logs_in_and_announces(
    anon_client, sent_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(
            "/api/accounts/register/",
            {"username": "roxana", "email": "roxana@example.com", "password": PASSWORD},
            format="json",
        )
    assert response.status_code == 201, response.content
    user = User.objects.get(username="roxana")
    assert response.json()["token"] == Token.objects.get(user=user).key
    assert user.check_password(PASSWORD)
    assert [s["user"] for s in sent_signals["user_registered"]] == [user]
    # Registration logs the new user in, but it is not a login attempt.
    assert sent_signals["login_attempted"] == []
    me = anon_client.get("/api/accounts/me/")  # the session from registration
    assert me.status_code == 200 and me.json()["username"] == "roxana"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "x y", "email": "a@example.com", "password": PASSWORD}, "username"),
        ({"username": "ok", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "ok", "email": "a@example.com", "password": "123"}, "password"),
        ({"username": "ok", "email": "a@example.com"}, "password"),
    ],
)
def test_register_refuses_bad_input_with_reason(anon_client, body, field):
    response = anon_client.post("/api/accounts/register/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not User.objects.filter(username="ok").exists()


def test_register_refuses_taken_username(anon_client, customer):
    response = anon_client.post(
        "/api/accounts/register/",
        {"username": "CYRUS", "email": "c2@example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


def test_login_returns_token_and_session_and_announces(anon_client, customer, sent_signals):
    response = anon_client.post(
        "/api/accounts/login/", {"username": "cyrus", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=customer).key
    assert response.json()["user"]["username"] == "cyrus"
    assert anon_client.get("/api/accounts/me/").json()["id"] == customer.pk
    [attempt] = sent_signals["login_attempted"]
    assert attempt["success"] is True and attempt["user"] == customer
    assert attempt["username"] == "cyrus"


@pytest.mark.parametrize("username", ["cyrus", "nobody"])
def test_failed_login_answers_401_with_reason_and_announces(
    anon_client, customer, sent_signals, username
):
    response = anon_client.post(
        "/api/accounts/login/", {"username": username, "password": "wrong"}, format="json"
    )
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Invalid username or password.",
        "code": "invalid_credentials",
    }
    assert response["WWW-Authenticate"] == "Token"
    [attempt] = sent_signals["login_attempted"]
    assert attempt["success"] is False and attempt["user"] is None
    assert attempt["username"] == username
    assert attempt["request"].META["REMOTE_ADDR"] == "127.0.0.1"
    assert anon_client.get("/api/accounts/me/").status_code in (401, 403)


def test_token_auth_and_logout_revokes_token(customer_client, customer):
    assert customer_client.get("/api/accounts/me/").json()["username"] == "cyrus"
    assert customer_client.post("/api/accounts/logout/").status_code == 204
    assert not Token.objects.filter(user=customer).exists()
    assert customer_client.get("/api/accounts/me/").status_code in (401, 403)


def test_me_needs_authentication(anon_client):
    assert anon_client.get("/api/accounts/me/").status_code in (401, 403)


def test_session_clients_need_the_csrf_token_for_writes(customer, make_product):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    login = browser.post(
        "/api/accounts/login/", {"username": "cyrus", "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200  # logging in needs no CSRF token
    body = {"items": [{"product": make_product().pk, "quantity": 1}]}
    refused = browser.post("/api/orders/", body, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    csrf = browser.cookies["csrftoken"].value
    placed = browser.post("/api/orders/", body, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert placed.status_code == 201
    out = browser.post("/api/accounts/logout/", HTTP_X_CSRFTOKEN=csrf)
    assert out.status_code == 204
    assert browser.get("/api/accounts/me/").status_code in (401, 403)
