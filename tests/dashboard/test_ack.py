"""Acknowledging from the dashboard without a browser, over a real state file: staff only,
CSRF for a session, the reasons of a refusal (400 bad input, 404 unknown, 409 not firing), the
acknowledgement recorded in monitoring.acknowledge's records as the signed-in user, the
current acknowledgements the page loads, and the escalation steps in the alert's history."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dashboard.history import alert_history
from monitoring.acknowledge import acknowledgements
from monitoring.escalation import store as es
from monitoring.monitor.state import StateStore
from monitoring.notify.notification import NotifiedAlert

pytestmark = pytest.mark.django_db

NOW = int(time.time() * 1000)
FIRING_ALERT = NotifiedAlert(
    labels={"alertname": "DatabaseDown", "severity": "critical"},
    annotations={"summary": "The database is down"},
    starts_at_ms=NOW - 60_000,
)
RESOLVED_ALERT = NotifiedAlert(
    labels={"alertname": "HighCpuUsage", "severity": "warning"},
    annotations={},
    starts_at_ms=NOW - 120_000,
    ends_at_ms=NOW - 30_000,
    status="resolved",
)


@pytest.fixture
def state(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("MONITOR_STATE_PATH", str(path))
    store = StateStore(path)
    store.alerts_received([FIRING_ALERT, RESOLVED_ALERT], at_ms=NOW - 60_000)
    store.alerts_received([RESOLVED_ALERT], at_ms=NOW - 30_000)
    yield store
    store.close()


def _staff(username: str = "ana", *, staff: bool = True, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(User.objects.create_user(username, password="x", is_staff=staff))
    return client


def _ack(client: Client, fp: str, body=None, **extra):
    data = {"comment": "on it"} if body is None else body
    return client.post(
        f"/dashboard/api/alerts/{fp}/ack", data, content_type="application/json", **extra
    )


def test_staff_acknowledge_as_themselves_in_the_notifiers_records(state):
    answer = _ack(_staff("ana"), FIRING_ALERT.fingerprint)
    assert answer.status_code == 200, answer.content
    ack = answer.json()["ack"]
    assert (ack["by"], ack["comment"], ack["alertname"]) == ("ana", "on it", "DatabaseDown")
    [recorded] = acknowledgements(store=state)
    assert (recorded.fingerprint, recorded.by, recorded.episode_ms) == (
        FIRING_ALERT.fingerprint, "ana", FIRING_ALERT.starts_at_ms,
    )  # fmt: skip
    # The first acknowledgement of the episode stands: a second one answers it.
    again = _ack(_staff("bo"), FIRING_ALERT.fingerprint, {"comment": "me too"})
    assert again.status_code == 200 and again.json()["ack"]["by"] == "ana"
    assert len(acknowledgements(store=state)) == 1
    # What the alerts page loads to mark the row.
    current = _staff("cy").get("/dashboard/api/acks").json()["acks"]
    assert [(a["fingerprint"], a["by"]) for a in current] == [(FIRING_ALERT.fingerprint, "ana")]


def test_only_staff_may_acknowledge(state):
    fp = FIRING_ALERT.fingerprint
    anonymous = _ack(Client(), fp)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert _ack(_staff("customer", staff=False), fp).status_code == 403
    assert Client().get("/dashboard/api/acks").status_code == 401
    assert _staff("customer2", staff=False).get("/dashboard/api/acks").status_code == 403
    assert _staff().get(f"/dashboard/api/alerts/{fp}/ack").status_code == 405
    assert acknowledgements(store=state) == []


def test_a_session_needs_the_csrf_token(state):
    client = _staff(csrf=True)
    assert _ack(client, FIRING_ALERT.fingerprint).status_code == 403
    assert acknowledgements(store=state) == []
    client.get("/dashboard/alerts/")  # the page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    answer = _ack(client, FIRING_ALERT.fingerprint, HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200 and answer.json()["ack"]["by"] == "ana"


@pytest.mark.parametrize(
    ("fp", "body", "status", "reason"),
    [
        ("not-a-fingerprint", {"comment": ""}, 400, "16 hex digits"),
        (FIRING_ALERT.fingerprint, ["on it"], 400, "JSON object"),
        (FIRING_ALERT.fingerprint, {"comment": 7}, 400, "comment: a string"),
        (FIRING_ALERT.fingerprint, {"comment": "x" * 1001}, 400, "at most 1000"),
        (RESOLVED_ALERT.fingerprint, {}, 409, "no firing alert"),
        ("0123456789abcdef", {}, 404, "no firing alert"),
    ],
)
def test_refusals_say_why(state, fp, body, status, reason):
    answer = _ack(_staff(), fp, body)
    assert answer.status_code == status and reason in answer.json()["error"], answer.content
    assert acknowledgements(store=state) == []


def test_bad_json_is_a_400(state):
    answer = _staff().post(
        f"/dashboard/api/alerts/{FIRING_ALERT.fingerprint}/ack", "{nope",
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 400 and "bad acknowledgement" in answer.json()["error"]


def test_no_state_file_yet_is_not_found_and_no_acks(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_STATE_PATH", str(tmp_path / "none.sqlite3"))
    answer = _ack(_staff(), FIRING_ALERT.fingerprint)
    assert answer.status_code == 404 and "no state file" in answer.json()["error"]
    assert _staff("bo").get("/dashboard/api/acks").json() == {"acks": []}
    assert not (tmp_path / "none.sqlite3").exists()  # the web process never creates it


def test_history_has_escalation_steps_and_the_ack_in_time_order(state):
    fp, episode = FIRING_ALERT.fingerprint, FIRING_ALERT.starts_at_ms
    es.claim_level(
        state, fingerprint=fp, episode_ms=episode, alertname="DatabaseDown",
        policy="critical", level=2, at_ms=NOW - 40_000,
    )  # fmt: skip
    es.event_add(
        state, fingerprint=fp, episode_ms=episode, kind="notify", level=2,
        at_ms=NOW - 40_000, detail={"receiver": "oncall", "queued": True},
    )  # fmt: skip
    assert _ack(_staff("ana"), fp).status_code == 200
    events = _staff("bo").get(f"/dashboard/api/history/{fp}").json()["events"]
    assert [e["kind"] for e in events] == ["transition", "level", "notify", "ack"]
    assert [e["at_ms"] for e in events] == sorted(e["at_ms"] for e in events)
    level, notify, ack = events[1:]
    assert (level["level"], level["detail"]["policy"]) == (2, "critical")
    assert notify["detail"]["receiver"] == "oncall"
    assert (ack["by"], ack["detail"]["comment"]) == ("ana", "on it")
    # The same merge, called directly on the file.
    assert alert_history(state.path, fp)["events"] == events
