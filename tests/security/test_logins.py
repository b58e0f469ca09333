"""Failed logins: recorded, blocked per address after more than 5 in 5 minutes, unblocked by
staff; credential stuffing detected; no account is ever locked."""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from monitoring.metrics import sample_values
from security.models import BlockedIp, FailedLogin, SecurityEvent
from tests.security.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.db]

LOGIN = "/api/accounts/login/"


def _client(ip: str, **extra) -> APIClient:
    return APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT="drill/1.0", **extra)


def _login(client: APIClient, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password}, format="json")


def _value(name: str, **labels) -> float:
    return sum(
        v for n, lab, v in sample_values(name) if all(lab.get(k) == x for k, x in labels.items())
    )


def test_the_sixth_failure_blocks_the_address_and_no_one_else(security, caplog):
    User.objects.create_user("alice", password=PASSWORD)
    attacker, other = _client("203.0.113.9"), _client("198.51.100.4")
    failed_before = _value("failed_login_attempts_total", source="api")
    caplog.set_level(logging.WARNING, logger="security")
    for _ in range(6):
        assert _login(attacker, "alice", "guess").status_code == 401
    refused = _login(attacker, "alice", PASSWORD)  # even the right password, from there
    assert refused.status_code == 403
    assert refused.json()["code"] == "ip_blocked" and "blocked" in refused.json()["detail"]
    assert 890 <= int(refused["Retry-After"]) <= 900
    assert attacker.get("/api/catalog/products/").status_code == 403  # the API too
    assert attacker.get("/api/health/").status_code == 200  # never the probe
    # The account is not locked: its owner signs in from their own address.
    assert _login(other, "alice", PASSWORD).status_code == 200
    assert _value("failed_login_attempts_total", source="api") - failed_before == 6
    row = FailedLogin.objects.first()
    assert (row.ip, row.username, row.user_agent, row.source) == (
        "203.0.113.9", "alice", "drill/1.0", "api",
    )  # fmt: skip
    [event] = SecurityEvent.objects.filter(type="ip_blocked")
    assert event.ip == "203.0.113.9" and event.detail["failures"] == 6
    lines = [r for r in caplog.records if r.getMessage().startswith("login failed")]
    assert len(lines) == 6 and lines[0].client_ip == "203.0.113.9" and lines[0].username == "alice"
    assert "guess" not in caplog.text  # never the password


def test_forwarded_headers_count_only_through_a_trusted_proxy(security):
    User.objects.create_user("alice", password=PASSWORD)
    # Through the proxy (10.9.0.0/16) each forwarded address is its own client.
    for n in range(3):
        proxy = _client("10.9.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for _ in range(6):
            _login(proxy, "alice", "guess")
    assert sorted(BlockedIp.objects.values_list("ip", flat=True)) == [
        "198.51.100.0", "198.51.100.1", "198.51.100.2",
    ]  # fmt: skip
    # Straight from an untrusted peer, the forged header is ignored: one address, one count.
    for n in range(7):
        forger = _client("203.0.113.50", HTTP_X_FORWARDED_FOR=f"1.1.1.{n}")
        status = _login(forger, "alice", "guess").status_code
    assert status == 403
    assert BlockedIp.objects.filter(ip="203.0.113.50").exists()
    assert not BlockedIp.objects.filter(ip__startswith="1.1.1.").exists()


def test_the_admin_login_counts_and_is_blocked_too(security):
    client = _client("203.0.113.10")
    client.get("/admin/login/")
    for _ in range(6):
        response = client.post("/admin/login/", {"username": "root", "password": "x"})
        assert response.status_code == 200  # the form again, with its error
    assert FailedLogin.objects.filter(source="admin").count() == 6
    assert client.post("/admin/login/", {"username": "root", "password": "x"}).status_code == 403


def test_staff_unblock_through_the_api_and_the_command(security):
    staff = User.objects.create_user("darius", password=PASSWORD, is_staff=True)
    customer = User.objects.create_user("cyrus", password=PASSWORD)
    attacker = _client("203.0.113.11")
    for _ in range(6):
        _login(attacker, "cyrus", "guess")
    admin = APIClient(REMOTE_ADDR="198.51.100.200")
    admin.force_authenticate(staff)
    listed = admin.get("/api/security/blocks/").json()
    assert [b["ip"] for b in listed] == ["203.0.113.11"]
    nobody = APIClient(REMOTE_ADDR="198.51.100.201")
    nobody.force_authenticate(customer)
    assert nobody.delete("/api/security/blocks/203.0.113.11/").status_code == 403
    assert admin.delete("/api/security/blocks/not-an-ip/").status_code == 400
    assert admin.delete("/api/security/blocks/203.0.113.11/").status_code == 204
    assert admin.delete("/api/security/blocks/203.0.113.11/").status_code == 404
    assert _login(attacker, "cyrus", PASSWORD).status_code == 200
    [event] = SecurityEvent.objects.filter(type="ip_unblocked")
    assert event.actor == "darius"
    # The command, after another block.
    for _ in range(6):
        _login(_client("203.0.113.12"), "cyrus", "guess")
    out = io.StringIO()
    call_command("security", "blocks", stdout=out)
    assert "203.0.113.12" in out.getvalue()
    call_command("security", "unblock", "203.0.113.12", stdout=out)
    assert not BlockedIp.objects.exists()
    with pytest.raises(CommandError, match="not blocked"):
        call_command("security", "unblock", "203.0.113.12")


def test_credential_stuffing_both_ways_is_an_event_and_locks_nothing(security, settings):
    settings.SECURITY_LOGIN_FAILURES = 100  # the block would stop the drill first
    from security import config

    config.reset()
    User.objects.create_user("alice", password=PASSWORD)
    stuffer = _client("203.0.113.20")
    for n in range(11):
        _login(stuffer, f"user{n}", "leaked")
    for n in range(11):
        _login(_client(f"198.51.100.{n}"), "alice", "leaked")
    types = list(SecurityEvent.objects.values_list("type", "ip", "username"))
    assert ("many_usernames_from_ip", "203.0.113.20", "") in types
    assert ("username_from_many_ips", "198.51.100.10", "alice") in types
    assert len(types) == 2  # once each, at the crossing
    assert _login(_client("192.0.2.1"), "alice", PASSWORD).status_code == 200


def test_events_are_listed_through_the_api(security):
    staff = User.objects.create_user("darius", password=PASSWORD, is_staff=True)
    for _ in range(6):
        _login(_client("203.0.113.13"), "x", "y")
    client = APIClient(REMOTE_ADDR="198.51.100.250")
    assert client.get("/api/security/events/").status_code == 401
    client.force_authenticate(staff)
    body = client.get("/api/security/events/?type=ip_blocked").json()
    assert [(e["type"], e["ip"]) for e in body["results"]] == [("ip_blocked", "203.0.113.13")]
    assert client.get("/api/security/events/?type=nope").status_code == 400
    assert client.get("/api/security/events/?since=yesterday").status_code == 400
    out = io.StringIO()
    call_command("security", "events", "--type", "ip_blocked", stdout=out)
    assert "203.0.113.13" in out.getvalue()
