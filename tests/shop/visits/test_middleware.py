"""Unique visitors per day without a database row per request (shop/visits/counting.py)."""

import datetime
import socket
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.collectors.business import business_conversion
from shop.orders.models import Order
from shop.visits import counting
from shop.visits.counting import BatchedVisitors, RedisVisitors
from shop.visits.middleware import COOKIE
from shop.visits.models import Visit
from shop.visits.services import visitors_on
from tests.services import require_redis

pytestmark = [pytest.mark.django_db, pytest.mark.db, pytest.mark.xdist_group("redis-db-15")]

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def _no_visits_yet(db):
    """These tests count every visit of today: they start from none. On PostgreSQL an earlier
    test's visits can be committed: this process's business collector thread reads the
    conversion rate, and counting flushes the pending visit batch on that thread's own
    connection, outside the test's transaction (seen after tests/security/test_activity.py)."""
    Visit.objects.all().delete()


def _visit_inserts(queries) -> int:
    return sum(
        1 for q in queries if q["sql"].lstrip().upper().startswith("INSERT") and "visit" in q["sql"]
    )


def _today() -> int:
    return visitors_on(day=timezone.localdate())


def _cookieless_requests(n: int, **headers) -> None:
    client = Client(**headers)
    for _ in range(n):
        client.cookies.clear()  # a script that keeps no cookies
        assert client.get("/api/catalog/categories/").status_code == 200


def test_1200_requests_from_one_cookieless_client_are_one_visitor_and_no_insert_each(db):
    with CaptureQueriesContext(connection) as queries:
        _cookieless_requests(1200, HTTP_USER_AGENT="curl/8.5")
    assert _visit_inserts(queries.captured_queries) <= 1  # at most one batch, not 1,200 rows
    assert _today() == 1
    # Another client (user agent) is another visitor.
    _cookieless_requests(3, HTTP_USER_AGENT="Mozilla/5.0")
    assert _today() == 2
    # Ids are keyed hashes: neither the address nor the agent is stored.
    assert all(
        len(v.visitor_key) == 32 and "curl" not in v.visitor_key for v in Visit.objects.all()
    )


def test_a_browser_is_one_visitor_a_day(category):
    browser = Client()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert browser.get("/api/catalog/products/").status_code == 200
    assert browser.cookies[COOKIE + "_day"].value == timezone.localdate().isoformat()
    assert _visit_inserts(queries.captured_queries) == 0  # queued, not written per request
    assert _today() == 1
    [visit] = Visit.objects.all()
    assert visit.day == timezone.localdate() and visit.user_id is None
    assert visit.visitor_key != browser.cookies[COOKIE].value
    Client(HTTP_USER_AGENT="another browser").get("/api/catalog/categories/")
    assert _today() == 2


def test_visit_remembers_the_logged_in_user(customer):
    browser = Client()
    browser.force_login(customer)
    browser.get("/api/accounts/me/")
    assert _today() == 1
    assert Visit.objects.get().user_id == customer.pk


def test_forged_visitor_cookie_is_replaced(category):
    browser = Client()
    browser.cookies[COOKIE] = "<script>"
    response = browser.get("/api/catalog/products/")
    key = response.cookies[COOKIE].value
    assert key != "<script>" and key.isalnum() and len(key) == 32
    assert _today() == 1


def test_a_visitor_seen_yesterday_counts_again_today(category):
    browser = Client()
    browser.get("/api/catalog/products/")
    browser.cookies[COOKIE + "_day"] = "2001-01-01"  # the day marker of an earlier day
    browser.get("/api/catalog/products/")  # counted by its cookie this time
    assert _today() == 2  # its cookie-less first request, and its cookie (no way to join them)
    browser.get("/api/catalog/products/")
    assert _today() == 2


def test_monitoring_paths_are_not_visits(db):
    Client().get("/api/health/")
    Client().get("/api/monitoring/prometheus/")
    assert _today() == 0 and not Visit.objects.exists()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_new_visitors_are_inserted_in_batches(db):
    clock = Clock()
    batched = BatchedVisitors(flush_seconds=5, batch=3, clock=clock)
    day = datetime.date(2026, 1, 2)
    with CaptureQueriesContext(connection) as queries:
        batched.add(day, "a" * 32)
        batched.add(day, "b" * 32)
        batched.add(day, "a" * 32)  # seen: not queued again
        assert _visit_inserts(queries.captured_queries) == 0
        batched.add(day, "c" * 32)  # the third new one: one insert of three rows
        assert _visit_inserts(queries.captured_queries) == 1
        batched.add(day, "d" * 32)
        clock.now = 5.0
        batched.add(day, "e" * 32)  # due by time
        assert _visit_inserts(queries.captured_queries) == 2
    assert Visit.objects.filter(day=day).count() == 5
    # Another worker's batch with an id already stored: merged by the unique constraint.
    other = BatchedVisitors(clock=clock)
    other.add(day, "a" * 32)
    other.add(day, "f" * 32)
    assert other.count(day) == 6


def test_conversion_rate_divides_paid_orders_by_unique_visitors(customer):
    _cookieless_requests(50, HTTP_USER_AGENT="one script")
    _cookieless_requests(1, HTTP_USER_AGENT="a shopper")
    Order.objects.create(number="X", user=customer, status="paid", total=1)
    reading = business_conversion(now=timezone.now())
    assert reading == {"visitors_today": 2, "orders_today": 1, "conversion_rate_percent": 50.0}


@pytest.fixture
def redis_visitors(monkeypatch):
    """The HyperLogLog counter on Redis db 15, as with REDIS_URL; today's key removed after."""
    require_redis()
    redis_counter = RedisVisitors(REDIS_URL)
    key = counting.REDIS_KEY.format(day=timezone.localdate().isoformat())
    redis_counter.client.delete(key)
    monkeypatch.setattr(counting, "_visitors", redis_counter)
    yield redis_counter
    redis_counter.client.delete(key)


@pytest.mark.redis
def test_with_redis_1200_requests_are_one_visitor_and_no_database_write(redis_visitors):
    with CaptureQueriesContext(connection) as queries:
        _cookieless_requests(1200, HTTP_USER_AGENT="curl/8.5")
    assert _visit_inserts(queries.captured_queries) == 0
    assert _today() == 1
    for n in range(300):
        redis_visitors.add(timezone.localdate(), f"{n:032x}")
    assert 297 <= _today() <= 305  # HyperLogLog: exact-ish at this size
    key = counting.REDIS_KEY.format(day=timezone.localdate().isoformat())
    assert 0 < redis_visitors.client.ttl(key) <= counting.REDIS_TTL_SECONDS


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_its_redis_requests_go_on_and_the_rate_is_unavailable(db, monkeypatch, caplog):
    down = RedisVisitors(f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setattr(counting, "_visitors", down)
    started = time.monotonic()
    _cookieless_requests(20, HTTP_USER_AGENT="curl/8.5")
    assert time.monotonic() - started < 10  # no request waits on the dead Redis for long
    warnings = [r for r in caplog.records if r.getMessage().startswith("Visitors not counted")]
    assert len(warnings) == 1  # once a minute, not per request
    reading = business_conversion(now=timezone.now())
    assert reading["visitors_today"] is None and reading["conversion_rate_percent"] is None


def test_synthetic_checks_and_rum_beacons_are_not_visitors(db):
    from monitoring.synthetic.probe import USER_AGENT

    _cookieless_requests(3, HTTP_USER_AGENT=USER_AGENT)
    Client().post("/api/rum/", {"page": "home"}, content_type="application/json")
    assert _today() == 0
    _cookieless_requests(1, HTTP_USER_AGENT="Mozilla/5.0")
    assert _today() == 1
