import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from monitoring.logging.context import request_id_var, request_var
from monitoring.logging.redaction import REDACTED

BEARER = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


@pytest.fixture
def user_token(db):
    user = get_user_model().objects.create_user("alice", password="correct-horse-battery")
    return user, Token.objects.create(user=user)


@pytest.mark.db
@pytest.mark.django_db
def test_access_line_carries_the_request_id_and_fields(client, json_logs):
    response = client.get("/api/schema/", HTTP_X_REQUEST_ID="req-abc123")
    assert response["X-Request-ID"] == "req-abc123"
    (access,) = [line for line in json_logs.lines() if line["logger"] == "access"]
    assert access["request_id"] == "req-abc123"
    assert access["method"] == "GET"
    assert access["route"] == "/api/schema/"
    assert access["path"] == "/api/schema/"
    assert access["status"] == 200
    assert access["duration_ms"] > 0
    assert access["bytes"] == len(response.content)
    assert access["client_ip"] == "127.0.0.1"
    assert access["user_id"] is None


@pytest.mark.db
@pytest.mark.django_db
def test_token_authenticated_user_is_on_the_access_line(client, json_logs, user_token):
    user, token = user_token
    client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {token.key}")
    (access,) = [line for line in json_logs.lines() if line["logger"] == "access"]
    assert access["user_id"] == user.pk
    assert token.key not in json_logs.text


@pytest.mark.db
@pytest.mark.django_db
def test_lines_written_after_drf_authentication_carry_the_user(json_logs, user_token):
    """DRF authenticates inside the view; lines after that carry the user, lines before do not."""
    user, token = user_token
    django_request = RequestFactory().get("/api/x/", HTTP_AUTHORIZATION=f"Token {token.key}")
    request = Request(django_request, authenticators=[_token_auth()])
    rid, req = request_id_var.set("req-1"), request_var.set(django_request)
    try:
        logging.getLogger("shop").info("before authentication")
        assert request.user == user  # what APIView.initial() does
        logging.getLogger("shop").info("after authentication")
    finally:
        request_id_var.reset(rid)
        request_var.reset(req)
    before, after = json_logs.lines()
    assert before["user_id"] is None and after["user_id"] == user.pk
    assert before["request_id"] == after["request_id"] == "req-1"


def _token_auth():
    from rest_framework.authentication import TokenAuthentication

    return TokenAuthentication()


@pytest.mark.db
@pytest.mark.django_db
def test_bearer_token_never_reaches_the_logs(client, json_logs):
    """A request with a bearer token to a missing page: Django's warning, the access line, and
    a line that dumps the request headers, all without the token and with the request id."""
    response = client.get(
        "/api/no-such-page/",
        HTTP_AUTHORIZATION=f"Bearer {BEARER}",
        HTTP_COOKIE=f"sessionid={BEARER}",
        HTTP_X_REQUEST_ID="req-bearer",
    )
    assert response.status_code == 404
    headers = {k: v for k, v in response.wsgi_request.META.items() if k.startswith("HTTP_")}
    logging.getLogger("shop").warning(
        "suspicious request %s", f"Authorization: Bearer {BEARER}", extra={"headers": headers}
    )
    assert BEARER not in json_logs.text
    lines = json_logs.lines()
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert not_found["request_id"] == "req-bearer"
    assert not_found["status_code"] == 404
    assert lines[-1]["headers"]["HTTP_AUTHORIZATION"] == REDACTED
    assert lines[-1]["headers"]["HTTP_COOKIE"] == REDACTED
    assert lines[-1]["message"] == f"suspicious request Authorization: {REDACTED}"


@pytest.mark.db
@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["req-1\n", "req 1", "x" * 129, "req-1\r\nSet-Cookie: a=b", ""])
def test_an_unusable_incoming_request_id_is_replaced(client, sent):
    """Only a plain id is echoed: a trailing newline would break the response header."""
    response = client.get("/api/schema/", HTTP_X_REQUEST_ID=sent)
    assert response.status_code == 200
    assert response["X-Request-ID"].startswith("req-") and response["X-Request-ID"] != sent
