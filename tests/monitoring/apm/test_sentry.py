"""Sentry: a local envelope endpoint receives the exception of a view and of a Celery task
(a real worker on Redis db 15), each with its request id and user id, and without secrets."""

import json

import httpx
import pytest
import sentry_sdk
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

import monitoring.apm
from tests.monitoring.apm.receivers import SentryReceiver

# Shares Redis database 15 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-15")

PASSWORD = "hunter2-Very-Secret"
CARD = "4111 1111 1111 1111"
API_TOKEN = "tok_9f8e7d6c5b4a39281706"
SECRETS = (PASSWORD, CARD, CARD.replace(" ", ""), API_TOKEN)


@pytest.fixture
def sentry(settings):
    yield from _sentry(settings)


@pytest.fixture
def sentry_with_tracing(settings):
    settings.SENTRY_TRACES_SAMPLE_RATE = 1.0
    yield from _sentry(settings)


def _sentry(settings):
    with SentryReceiver() as receiver:
        settings.SENTRY_DSN = receiver.dsn
        settings.ENVIRONMENT = "staging"
        settings.RELEASE = "pasargad-prints@9.9.9"
        settings.ROOT_URLCONF = "tests.monitoring.apm.urls"
        monitoring.apm._configured_pid = None
        monitoring.apm.setup()
        yield receiver
        sentry_sdk.flush(timeout=5)
        sentry_sdk.init()  # no DSN: the client is off for the rest of the session
        monitoring.apm._configured_pid = None


def assert_no_secret(receiver: SentryReceiver, token_key: str) -> None:
    for body in receiver.raw:
        text = body.decode("utf-8", "replace")
        for secret in (*SECRETS, token_key):
            assert secret not in text, f"{secret!r} reached Sentry"


def customer() -> tuple[User, str]:
    user = User.objects.create_user("parisa", "parisa@example.com", PASSWORD)
    return user, Token.objects.create(user=user).key


# A real WSGI server (the live server thread): the request as a deployed server hands it over.
@pytest.mark.django_db(transaction=True)
def test_a_view_exception_reaches_sentry_with_request_id_and_user_without_secrets(
    sentry, live_server
):
    user, key = customer()
    response = httpx.post(
        f"{live_server.url}/apm-test/fails/?token={API_TOKEN}",
        content=json.dumps({"password": PASSWORD, "card_number": CARD}),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]

    event = sentry.wait_for(lambda: next(iter(sentry.events), None))
    assert event is not None, "no event reached the envelope endpoint"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert "[REDACTED]" in exception["value"]
    assert event["tags"]["request_id"] == request_id
    assert event["environment"] == "staging"
    assert event["release"] == "pasargad-prints@9.9.9"
    assert event["request"]["url"].endswith("/apm-test/fails/")
    assert event["request"]["headers"]["Authorization"] == "[REDACTED]"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "checkout_fails"
    assert frame["vars"]["password"] == "[REDACTED]"
    assert_no_secret(sentry, key)
    sentry_sdk.flush(timeout=5)
    # Once: Django's own log line of the 500 (django.request, ERROR) is not a second event.
    assert len(sentry.events) == 1, sentry.events


# With Sentry's tracing asked for, its Django integration is installed and reports the view's
# exception itself: once, not again from our got_request_exception receiver.
@pytest.mark.django_db(transaction=True)
def test_with_sentry_tracing_a_view_exception_is_reported_once_with_its_request_id(
    sentry_with_tracing, live_server
):
    response = httpx.post(
        f"{live_server.url}/apm-test/fails/",
        content=json.dumps({"password": PASSWORD, "card_number": CARD}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 500
    event = sentry_with_tracing.wait_for(lambda: next(iter(sentry_with_tracing.events), None))
    assert event is not None, "no event reached the envelope endpoint"
    assert event["tags"]["request_id"] == response.headers["X-Request-ID"]
    sentry_sdk.flush(timeout=5)
    assert len(sentry_with_tracing.events) == 1, sentry_with_tracing.events
    assert_no_secret(sentry_with_tracing, "no-token")


@pytest.mark.django_db
def test_an_authenticated_view_exception_carries_the_user_id(sentry):
    user, _ = customer()
    client = Client(raise_request_exception=False)
    client.force_login(user)
    client.post(
        "/apm-test/fails/",
        data=json.dumps({"password": PASSWORD, "card_number": CARD}),
        content_type="application/json",
    )
    event = sentry.wait_for(lambda: next(iter(sentry.events), None))
    assert event is not None
    assert event["user"] == {"id": str(user.pk)}  # the id only: no e-mail, no address


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db
def test_a_task_exception_reaches_sentry_with_the_request_id_that_enqueued_it(
    sentry, start_worker, tmp_path
):
    worker = start_worker(
        {
            "SENTRY_DSN": sentry.dsn,
            "ENVIRONMENT": "staging",
            "RELEASE": "pasargad-prints@9.9.9",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        }
    )
    user, key = customer()
    client = Client()
    client.force_login(user)
    response = client.post(
        "/apm-test/enqueues/",
        data=json.dumps({"card_number": CARD, "api_token": API_TOKEN}),
        content_type="application/json",
    )
    assert response.status_code == 202
    request_id = response.headers["X-Request-ID"]

    def task_event():
        return next(
            (e for e in sentry.events if e["exception"]["values"][0]["type"] == "ValueError"),
            None,
        )

    event = sentry.wait_for(task_event, timeout=60)
    assert event is not None, f"no task event; got {sentry.events}\n{worker.log()}"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ValueError"
    assert event["tags"]["request_id"] == request_id
    assert event["user"] == {"id": str(user.pk)}
    assert event["environment"] == "staging"
    assert_no_secret(sentry, key)
