"""The one-click acknowledgement link and the monitor API's acknowledgement, over a real state
file: GET only shows the confirmation (a link previewer acknowledges nothing), POST
acknowledges; a tampered, malformed or expired link is refused with 4xx. Plus the customer
status page and JSON."""

from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace

import pytest

from monitoring.acknowledge import acknowledgements
from monitoring.acknowledge.links import LinkError, ack_token, ack_token_check, ack_url
from monitoring.escalation import store as es
from monitoring.escalation.status import status_notice_clear_cache
from monitoring.monitor.api import handle
from monitoring.monitor.state import StateStore
from monitoring.notify.notification import NotifiedAlert

# The shop's middleware (visit counting) writes the database on every page.
pytestmark = pytest.mark.django_db

NOW = int(time.time() * 1000)
ALERT = NotifiedAlert(
    labels={"alertname": "DatabaseDown", "severity": "critical"},
    annotations={"summary": "The database is down"},
    starts_at_ms=NOW - 60_000,
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("MONITOR_STATE_PATH", str(path))
    s = StateStore(path)
    s.alerts_received([ALERT], at_ms=NOW)
    yield s
    s.close()


def test_a_token_round_trips_and_a_bad_one_is_refused():
    fp = ALERT.fingerprint
    token = ack_token(fp)
    assert ack_token_check(token) == fp
    assert len(token) < 45  # with the site URL it still fits an SMS beside the message
    head, expiry, sig = token.split(".")
    other = "0" * 16
    for bad in (f"{other}.{expiry}.{sig}", f"{head}.{expiry}.{'A' * 16}", "nonsense", ""):
        with pytest.raises(LinkError):
            ack_token_check(bad)
    with pytest.raises(LinkError, match="expired"):
        ack_token_check(ack_token(fp, now_s=time.time() - 7200, max_age_s=3600))


def test_the_link_is_in_messages_when_a_base_url_is_set(monkeypatch):
    monkeypatch.delenv("ACK_BASE_URL", raising=False)
    monkeypatch.delenv("SITE_URL", raising=False)
    assert ack_url(ALERT.fingerprint) == ""
    monkeypatch.setenv("ACK_BASE_URL", "https://shop.example/")
    url = ack_url(ALERT.fingerprint)
    assert url.startswith(f"https://shop.example/ack/{ALERT.fingerprint}.")


def test_get_confirms_without_acknowledging_and_post_acknowledges(client, store):
    url = f"/ack/{ack_token(ALERT.fingerprint)}"
    page = client.get(url)
    assert page.status_code == 200 and b"Acknowledge DatabaseDown" in page.content
    assert client.head(url).status_code in (200, 405)
    assert acknowledgements(store=store) == []  # what a link previewer does: nothing
    done = client.post(url, {"by": "alice", "comment": "looking"})
    assert done.status_code == 200 and b"acknowledged by alice (link)" in done.content
    (ack,) = acknowledgements(store=store)
    assert (ack.fingerprint, ack.by, ack.comment) == (ALERT.fingerprint, "alice (link)", "looking")
    # One click without a name still works.
    assert client.post(url).status_code == 200


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("0123456789abcdef.zzzzzz.AAAAAAAAAAAAAAAA", 403),  # signature not ours
        ("not-a-token", 400),
        ("expired", 400),
    ],
)
def test_bad_or_expired_links_are_refused(client, store, token, status):
    if token == "expired":
        token = ack_token(ALERT.fingerprint, now_s=time.time() - 7200, max_age_s=3600)
    assert client.get(f"/ack/{token}").status_code == status
    assert client.post(f"/ack/{token}", {"by": "mallory"}).status_code == status
    assert acknowledgements(store=store) == []


def test_a_link_to_an_alert_no_longer_firing_is_409(client, store):
    resolved = dataclasses.replace(ALERT, ends_at_ms=NOW, status="resolved")
    store.alerts_received([resolved], at_ms=NOW)
    assert client.post(f"/ack/{ack_token(ALERT.fingerprint)}").status_code == 409


def test_the_monitor_api_acknowledges_and_lists(store):
    monitor = SimpleNamespace(state=store)
    path = f"/api/v1/alerts/{ALERT.fingerprint}/ack"
    status, _, body = handle(monitor, "POST", path, {}, b'{"by": "bob", "comment": "mine"}')
    assert status == 200 and json.loads(body)["data"]["by"] == "bob"
    status, _, body = handle(monitor, "GET", "/api/v1/acknowledgements", {}, b"")
    assert [a["by"] for a in json.loads(body)["data"]] == ["bob"]
    assert handle(monitor, "POST", path, {}, b"{}")[0] == 400  # who?
    assert handle(monitor, "POST", path, {}, b"{not json")[0] == 400
    assert handle(monitor, "GET", path, {}, b"")[0] == 405
    assert (
        handle(monitor, "POST", "/api/v1/alerts/0123456789abcdef/ack", {"by": ["x"]}, b"")[0] == 404
    )
    status, _, body = handle(monitor, "GET", f"/api/v1/alerts/{ALERT.fingerprint}/history", {}, b"")
    assert [e["kind"] for e in json.loads(body)["data"]] == ["ack"]


def test_status_page_and_json_show_the_level_4_notice(client, store):
    status_notice_clear_cache()
    assert client.get("/api/status/").json() == {"status": "operational", "notice": None}
    assert b"All systems operational" in client.get("/status/").content
    es.claim_level(
        store, fingerprint=ALERT.fingerprint, episode_ms=ALERT.starts_at_ms, alertname="DatabaseDown",
        policy="critical", level=4, at_ms=NOW, notice={"title": "Checkout down", "message": "Soon back", "since_ms": NOW},
    )  # fmt: skip
    status_notice_clear_cache()
    answer = client.get("/api/status/").json()
    assert answer["status"] == "disrupted" and answer["notice"]["title"] == "Checkout down"
    page = client.get("/status/")
    assert page.status_code == 200 and b"Checkout down" in page.content
    assert page.context["status_notice"]["message"] == "Soon back"  # the context processor
    home = client.get("/")  # the storefront's banner, from the same context processor
    assert home.status_code == 200 and b"Checkout down" in home.content
    es.escalation_end(
        store,
        fingerprint=ALERT.fingerprint,
        episode_ms=ALERT.starts_at_ms,
        at_ms=NOW,
        reason="resolved",
    )
    status_notice_clear_cache()
    assert client.get("/api/status/").json()["notice"] is None


def test_status_and_ack_links_work_through_maintenance_mode(client, store, settings, tmp_path):
    from maintenance import mode

    settings.MAINTENANCE_FILE = tmp_path / "maintenance.json"
    mode.switch_on(retry_after=60, message="Upgrading")
    try:
        mode.read_now()
        assert client.get("/api/").status_code == 503  # customers get the maintenance answer
        assert client.get("/status/").status_code == 200
        assert client.get("/api/status/").status_code == 200
        assert client.get(f"/ack/{ack_token(ALERT.fingerprint)}").status_code == 200
    finally:
        mode.switch_off()
