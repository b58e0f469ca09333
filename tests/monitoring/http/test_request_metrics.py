"""Requests through the real middleware stack land in the right counters and histogram."""

import os
import socket

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.urls import path

from monitoring.http.active_users import ActiveUsers, FileStore, RedisStore
from monitoring.metrics import exposition
from tests.monitoring.metric_values import sample_value
from tests.services import require_redis


def ok(request, pk):
    return HttpResponse("ok")


def boom(request):
    raise RuntimeError("boom")


def teapot(request):
    return HttpResponse(status=418)


urlpatterns = [
    path("items/<int:pk>/", ok),
    path("boom/", boom),
    path("teapot/", teapot),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

REDIS_URL = "redis://127.0.0.1:6379/3"  # this checkout's own Redis database


def test_route_template_not_raw_path(client):
    before = sample_value("http_requests_total", route="/items/<int:pk>/", status="200")
    client.get("/items/1/")
    client.get("/items/2/")
    assert sample_value("http_requests_total", route="/items/<int:pk>/", status="200") == before + 2
    assert "/items/1/" not in exposition().decode()


def test_4xx_and_5xx_are_counted_apart(client):
    client.raise_request_exception = False
    before_4xx = sample_value("http_errors_total", **{"class": "4xx"})
    before_5xx = sample_value("http_errors_total", **{"class": "5xx"})
    assert client.get("/teapot/").status_code == 418
    assert client.get("/boom/").status_code == 500
    assert client.get("/nowhere/").status_code == 404
    assert sample_value("http_errors_total", **{"class": "4xx"}) == before_4xx + 2
    assert sample_value("http_errors_total", **{"class": "5xx"}) == before_5xx + 1
    assert sample_value("http_errors_total", route="/boom/", status="500", method="GET") >= 1
    assert sample_value("http_requests_total", route="<unmatched>", status="404") >= 1


def test_latency_histogram_and_odd_methods(client):
    before = sample_value("http_request_duration_seconds_count", route="/teapot/")
    client.generic("BREW", "/teapot/")
    client.get("/teapot/")
    assert sample_value("http_request_duration_seconds_count", route="/teapot/") == before + 2
    assert sample_value("http_requests_total", route="/teapot/", method="other") >= 1
    assert sample_value("http_request_duration_seconds_bucket", route="/teapot/", le="30.0") >= 2


def test_request_id_is_echoed_or_made(client):
    assert client.get("/teapot/", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/teapot/", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]
    assert made.startswith("req-") and made != "bad id\n"


def test_logged_in_users_are_active(client):
    from monitoring.http.metrics import ACTIVE_USERS

    before = ACTIVE_USERS.counts()["5m"]
    client.force_login(
        get_user_model().objects.create_user("active", password="x" * 12, id=987_654)
    )
    client.get("/teapot/")
    client.get("/teapot/")
    assert ACTIVE_USERS.counts()["5m"] == before + 1
    assert sample_value("active_users", window="5m") == before + 1


def two_workers(store_for, now):
    return (
        ActiveUsers(store=lambda pid=pid: store_for(pid), flush_interval=5, clock=lambda: now[0])
        for pid in (1, 2)
    )


def check_windows_across_workers(store_for):
    now = [1000.0]
    worker_a, worker_b = two_workers(store_for, now)
    worker_a.seen(1)
    worker_a.seen(2)
    now[0] += 400  # user 1 and 2 now only in the 15-minute window
    worker_b.seen(2)
    worker_b.seen(3)
    # worker_a shared at its first request; worker_b's own entries are in its memory.
    assert worker_b.counts() == {"5m": 2, "15m": 3}
    # b shared user 2 at its first request; user 3 waits for its flush interval (5 s).
    assert worker_a.counts() == {"5m": 1, "15m": 2}
    now[0] += 5
    worker_b.seen(3)  # its flush interval is over: shared now
    assert worker_a.counts() == {"5m": 2, "15m": 3}
    now[0] += 1000  # everyone is gone
    assert worker_b.counts() == {"5m": 0, "15m": 0}
    return worker_a, worker_b


def test_active_users_shared_through_files(tmp_path):
    check_windows_across_workers(
        lambda pid: FileStore(directory=lambda: tmp_path, process_id=lambda: pid)
    )


@pytest.mark.redis
def test_active_users_shared_through_redis():
    require_redis()
    key = f"test:active_users:{os.getpid()}"
    stores = [RedisStore(REDIS_URL, key=key)]
    try:
        worker_a, _ = check_windows_across_workers(lambda pid: stores[0])
        worker_a.seen(9)  # a flush prunes everyone not seen for 15 minutes
        assert stores[0].client.zrange(key, 0, -1) == [b"9"]
    finally:
        stores[0].client.delete(key)


def test_an_unreachable_redis_costs_freshness_not_requests():
    # A port nobody listens on (bound, never accepting): connection refused at once.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/3"
        users = ActiveUsers(store=lambda: RedisStore(url), flush_interval=0)
        users.seen(7)
        users.seen(8)
        assert users.counts() == {"5m": 2, "15m": 2}
