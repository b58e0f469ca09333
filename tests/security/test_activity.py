"""Rate limit, after-hours staff logins, new staff addresses, privilege grants, scans, file
integrity, the business-hours file, and the metrics they export."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from monitoring.configfile import ConfigError
from monitoring.metrics import exposition, sample_values
from security import business_hours, config
from security.models import SecurityEvent
from tests.security.conftest import PASSWORD, hours_yaml
from tests.wait import window_left

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def _events(type_: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(type=type_))


def test_rate_limit_answers_429_with_retry_after_and_spares_probes(security, settings):
    window_left(10)  # the exact counts below hold within one window
    settings.SECURITY_RATE_LIMIT = 50
    config.reset()
    client = APIClient(REMOTE_ADDR="203.0.113.30")
    before = sum(v for _, _, v in sample_values("rate_limited_requests_total"))
    statuses = [client.get("/api/catalog/products/").status_code for _ in range(60)]
    assert statuses == [200] * 50 + [429] * 10
    refused = client.get("/api/catalog/products/")
    assert refused.json()["code"] == "rate_limited" and 1 <= int(refused["Retry-After"]) <= 60
    assert sum(v for _, _, v in sample_values("rate_limited_requests_total")) - before == 11
    assert len(_events("rate_limited")) == 1  # one event per address and minute
    assert client.get("/api/health/").status_code == 200
    assert client.get("/api/monitoring/prometheus/").status_code in (401, 403)  # not 429
    assert APIClient(REMOTE_ADDR="203.0.113.31").get("/api/catalog/products/").status_code == 200


def test_the_rate_limit_counts_api_requests_not_storefront_pages(security, settings):
    """The specification's unusual_api_usage counts API requests: a customer browsing the
    shop (pages, their scripts) from an address many share is never refused."""
    window_left(10)  # the exact counts below hold within one window
    settings.SECURITY_RATE_LIMIT = 5
    config.reset()
    client = APIClient(REMOTE_ADDR="203.0.113.40")
    pages = [client.get(path).status_code for path in ["/", "/cart/", "/rum.js"] * 4]
    assert pages == [200] * 12
    statuses = [client.get("/api/catalog/products/").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2  # the pages before took none of the five
    assert client.get("/").status_code == 200  # and a refused API client still browses


def test_a_redis_outage_never_refuses(security, settings):
    window_left(10)  # the exact counts below hold within one window
    settings.SECURITY_RATE_LIMIT = 30
    settings.REDIS_URL = "redis://127.0.0.1:1/12"  # nothing listens there
    config.reset()
    client = APIClient(REMOTE_ADDR="203.0.113.32")
    statuses = [client.get("/api/catalog/products/").status_code for _ in range(40)]
    assert statuses == [200] * 30 + [429] * 10  # this host's own count still holds
    from shop import breaker

    breaker._breakers.pop("redis", None)  # closed again for the next tests


@pytest.mark.redis
def test_two_hosts_share_the_count_through_redis(tmp_path):
    """Two hosts (own counter files, own host names) against one Redis (db 12)."""
    from security.redis_share import BATCH, RedisShare
    from security.windows import SharedWindows
    from shop import breaker
    from tests.services import require_redis

    require_redis()
    breaker._breakers.pop("redis", None)  # an outage test of this process may have opened it
    url = "redis://127.0.0.1:6379/12"
    hosts = [
        (SharedWindows(tmp_path / f"{n}.bin"), RedisShare(url, host=f"host{n}")) for n in (0, 1)
    ]
    key, period, now = f"rl:test-{tmp_path.name}", 60.0, 6000.0 + 10
    window = int(now // period)
    allowed = 0
    for i in range(1000):
        windows, share = hosts[i % 2]
        ok, _, _ = windows.hit(key, 600, period, now, share.others(key, window))
        if ok:
            share.admitted(key, window, period)
            allowed += 1
    # Alone each host would let 600 through (1,000 in all); shared, the total stays within
    # the limit plus what each host had not told the other yet (under BATCH each).
    assert 600 <= allowed <= 600 + 2 * BATCH
    hosts[0][1].client.delete(f"sec:rl:{window}:{key}")


def test_staff_login_after_hours_names_who_where_when(security, settings, tmp_path):
    User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    User.objects.create_user("cyrus", password=PASSWORD)
    settings.SECURITY_BUSINESS_HOURS.write_text(hours_yaml(now_inside=False))
    business_hours._cache = None
    body = {"username": "root", "password": PASSWORD}
    assert (
        APIClient(REMOTE_ADDR="203.0.113.40")
        .post("/api/accounts/login/", body, format="json")
        .status_code
        == 200
    )
    body = {"username": "cyrus", "password": PASSWORD}
    APIClient(REMOTE_ADDR="203.0.113.41").post("/api/accounts/login/", body, format="json")
    [event] = _events("admin_login_after_hours")
    assert (event.username, event.ip, event.detail["role"]) == ("root", "203.0.113.40", "superuser")
    assert event.detail["local_time"][11:13] == "03"
    text = exposition().decode()
    assert (
        'security_recent_event{ip="203.0.113.40",type="admin_login_after_hours",username="root"}'
        in text
    )


def test_a_staff_login_from_a_new_address_is_an_event(security):
    User.objects.create_user("darius", password=PASSWORD, is_staff=True)
    body = {"username": "darius", "password": PASSWORD}
    for ip in ("198.51.100.1", "198.51.100.1", "203.0.113.42"):
        APIClient(REMOTE_ADDR=ip).post("/api/accounts/login/", body, format="json")
    assert [(e.username, e.ip) for e in _events("new_staff_ip")] == [("darius", "203.0.113.42")]


def test_privilege_grants_name_who_changed_what_for_whom(security):
    admin = User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    mallory = User.objects.create_user("mallory", password=PASSWORD)
    client = APIClient(REMOTE_ADDR="198.51.100.9")
    client.force_login(admin)
    change = client.get(f"/admin/auth/user/{mallory.pk}/change/")
    assert change.status_code == 200
    form = {
        "username": "mallory", "is_active": "on", "is_staff": "on",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    }  # fmt: skip
    assert client.post(f"/admin/auth/user/{mallory.pk}/change/", form).status_code == 302
    # Creating root as a superuser was a grant too (by the test process: "system:...").
    assert {e.detail["granted"] for e in _events("privilege_granted") if e.username == "root"} == {
        "is_staff", "is_superuser",
    }  # fmt: skip
    [event] = [e for e in _events("privilege_granted") if e.username == "mallory"]
    assert (event.username, event.actor, event.ip, event.detail["granted"]) == (
        "mallory", "root", "198.51.100.9", "is_staff",
    )  # fmt: skip
    editors = Group.objects.create(name="editors")
    mallory.groups.add(editors)
    editors.permissions.add(Permission.objects.get(codename="add_user"))
    mallory.user_permissions.add(Permission.objects.get(codename="change_user"))
    granted = [(e.username, e.detail["granted"]) for e in _events("privilege_granted")]
    assert set(granted) >= {
        ("mallory", "group:editors"),
        ("group:editors", "permission:add_user"),
        ("mallory", "permission:change_user"),
    }
    assert all(e.actor.startswith("system") for e in _events("privilege_granted")[:3])
    text = exposition().decode()
    assert 'security_recent_event{ip="",type="privilege_granted",username="mallory"}' in text


def test_bursts_of_404s_and_401s_are_scans(security):
    scanner = APIClient(REMOTE_ADDR="203.0.113.60")
    for n in range(35):
        scanner.get(f"/api/wp-admin-{n}.php")
    for _ in range(35):
        scanner.get("/api/accounts/me/", HTTP_AUTHORIZATION="Token nope")
    assert [e.ip for e in _events("scan_404")] == ["203.0.113.60"]
    assert [e.ip for e in _events("scan_401")] == ["203.0.113.60"]


def test_file_integrity_baseline_check_and_rebaseline(security, settings, tmp_path):
    root = tmp_path / "app"
    (root / "config").mkdir(parents=True)
    (root / "config/settings.py").write_text("DEBUG = False\n")
    (root / "deploy.yml").write_text("a: 1\n")
    settings.BASE_DIR = root
    settings.SECURITY_INTEGRITY_PATHS = ["config/**/*.py", "*.yml"]
    out = io.StringIO()
    call_command("security", "check", stdout=out)  # no baseline: the first check takes it
    assert [e.actor for e in _events("file_integrity_baselined")] == ["system:first-check"]
    (root / "config/settings.py").write_text("DEBUG = True\n")
    (root / "deploy.yml").unlink()
    (root / "extra.yml").write_text("b: 2\n")
    with pytest.raises(CommandError, match="3 critical files"):
        call_command("security", "check", stdout=out)
    assert "modified\tconfig/settings.py" in out.getvalue()
    text = exposition().decode()
    for line in (
        'security_file_integrity_changed{change="modified",path="config/settings.py"} 1.0',
        'security_file_integrity_changed{change="missing",path="deploy.yml"} 1.0',
        'security_file_integrity_changed{change="added",path="extra.yml"} 1.0',
    ):
        assert line in text
    [event] = _events("file_integrity_changed")
    assert event.severity == "critical" and event.detail["count"] == 3
    with pytest.raises(CommandError):
        call_command("security", "check", stdout=out)
    assert len(_events("file_integrity_changed")) == 1  # the same finding: no second event
    call_command("security", "baseline", "--reason", "release 2", stdout=out)
    assert "security_file_integrity_changed{" not in exposition().decode()
    assert _events("file_integrity_baselined")[0].detail["reason"] == "release 2"
    baseline = json.loads((settings.SECURITY_INTEGRITY_DIR / "file_baseline.json").read_text())
    assert sorted(baseline["files"]) == ["config/settings.py", "extra.yml"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('timezone: Mars/Olympus\ndays: [mon]\nhours: "09:00-17:00"\n', ":1: unknown time zone"),
        ('timezone: UTC\ndays: [mon, funday]\nhours: "09:00-17:00"\n', ":2: unknown day"),
        ('timezone: UTC\ndays: [mon]\nhours: "17:00-09:00"\n', ":3: hours"),
        ('timezone: UTC\ndays: [mon]\nhours: "9-5"\nholidays: [soon]\n', ":3: hours"),
        ('timezone: UTC\ndays: [mon]\nhours: "09:00-17:00"\nholidays: [soon]\n', ":4: holiday"),
        ("timezone: UTC\n", "missing field 'days'"),
        ('timezone: UTC\ndays: [mon]\nhours: "09:00-17:00"\nextra: 1\n', ":4: unknown field"),
    ],
)
def test_a_malformed_business_hours_file_is_refused_with_file_and_line(tmp_path, text, problem):
    path = tmp_path / "hours.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        business_hours.load(path)
    assert str(path) in str(refused.value) and problem in str(refused.value)


def test_business_hours_days_hours_holidays():
    from django.conf import settings

    hours = business_hours.load(settings.SECURITY_BUSINESS_HOURS)  # the shipped file
    tehran = hours.zone
    at = lambda *args: dt.datetime(*args, tzinfo=tehran)  # noqa: E731
    assert hours.contains(at(2026, 12, 5, 9, 0))  # a Saturday, a working day there
    assert not hours.contains(at(2026, 12, 5, 3, 0))  # 03:00
    assert not hours.contains(at(2026, 12, 4, 10, 0))  # Friday
    assert not hours.contains(at(2027, 3, 21, 10, 0))  # Nowruz
    assert not hours.contains(at(2026, 12, 5, 18, 0))  # the end is exclusive
