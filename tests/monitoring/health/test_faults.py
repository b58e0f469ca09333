"""A stopped or hung Redis or PostgreSQL: the right component is down, the answer comes at the
check timeout, and the other components keep working.

That the answer does not wait for a hung server is shown by events where one can be seen (the
answer came while libpq, whose own connect timeout is 2 s or more, still held its connection);
the wall-clock bound only catches a hang, generous for a loaded machine (speed: bench_health)."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitoring.health.checks import DatabaseCheck, RedisCheck, _Deadline, run_checks
from tests.monitoring.health.conftest import TIMEOUT

pytestmark = pytest.mark.django_db


GAVE_UP = f"no answer within {TIMEOUT} s"
BOUND = TIMEOUT + 4.5


def timed_get(reader, url):
    started = time.monotonic()
    response = reader(url)
    return response, time.monotonic() - started


def test_redis_stopped(reader, health_settings, refused_port):
    health_settings.REDIS_URL = f"redis://127.0.0.1:{refused_port}/2"
    response, elapsed = timed_get(reader, "/api/health/detailed/")
    assert elapsed < BOUND
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["redis"]["status"] == "down"
    assert components["celery"]["status"] == "down"
    assert components["database"]["status"] == "ok"
    assert reader("/api/health/database/").status_code == 200
    assert reader("/api/health/").status_code == 200


def test_redis_hung(reader, health_settings, hung):
    health_settings.REDIS_URL = f"redis://127.0.0.1:{hung.port}/2"
    response, elapsed = timed_get(reader, "/api/health/detailed/")
    assert elapsed < BOUND
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["redis"]["status"] == "down"
    assert components["celery"]["status"] == "down"
    assert components["database"]["status"] == "ok"
    assert hung.accepted, "the check never reached the hung server"
    response, elapsed = timed_get(reader, "/api/health/redis/")
    assert elapsed < BOUND
    assert response.status_code == 503


def test_postgres_unreachable(reader, client, broken_database, refused_port):
    broken_database(refused_port)
    response, elapsed = timed_get(reader, "/api/health/detailed/")
    assert elapsed < BOUND
    assert response.status_code == 503
    database = response.json()["components"]["database"]
    assert database["status"] == "down"
    assert database["error"]
    assert client.get("/api/health/").status_code == 503


def test_postgres_hung(reader, client, broken_database, hung):
    broken_database(hung.port)
    response, elapsed = timed_get(reader, "/api/health/detailed/")
    assert hung.accepted and hung.clients_gone() == 0  # answered before libpq gave up
    assert elapsed < BOUND
    assert response.status_code == 503
    database = response.json()["components"]["database"]
    assert database["status"] == "down"
    # The request stopped waiting at the timeout; libpq alone would have given up at 2 s.
    assert database["error"] == GAVE_UP
    started = time.monotonic()
    assert client.get("/api/health/").status_code == 503
    assert time.monotonic() - started < BOUND


def test_a_hung_server_gets_one_check_at_a_time(broken_database, hung):
    """Probes of a hung server share the running check (libpq's connect timeout is at least
    2 s, longer than a probe waits): no pile-up of threads or connections. The probes arrive
    together, as from several load balancers, so the shared run cannot have ended between them."""
    broken_database(hung.port)
    probe = threading.Barrier(4)

    def run_probe(_):
        probe.wait(timeout=30)
        return run_checks([DatabaseCheck(alias="default")], timeout=TIMEOUT)[0]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run_probe, range(4)))
    assert [(r.status, r.error) for r in results] == [("down", GAVE_UP)] * 4
    assert len(hung.accepted) == 1


def test_healthy_checks_answer_while_another_hangs(health_settings, hung):
    checks = [DatabaseCheck(alias="default"), RedisCheck(url=f"redis://127.0.0.1:{hung.port}/0")]
    results = {r.name: r for r in run_checks(checks, timeout=TIMEOUT)}
    assert results["database"].status == "ok"
    assert results["redis"].status == "down"
    assert "no answer" in results["redis"].error or "Timeout" in results["redis"].error


def test_the_socket_deadline_frees_a_blocked_read():
    """What bounds a PostgreSQL query on a hung server: the socket is shut down at the deadline."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(60)  # without the deadline: TimeoutError after a minute, not a hang
        started = time.monotonic()
        with _Deadline(ours.fileno(), 0.2) as deadline:
            assert ours.recv(1) == b""  # freed by the deadline's shutdown
        assert time.monotonic() - started >= 0.19  # not before its time
        assert deadline.expired


def test_database_up_is_the_health_checks_answer(health_settings, broken_database, refused_port):
    """`database_up{database}` (what DatabaseDown alerts on) says what /api/health/ says."""
    from monitoring.collectors import collectors

    def database_up():
        values = [
            (sample.labels, sample.value)
            for family in collectors().database.collect()
            for sample in family.samples
            if sample.name == "database_up"
        ]
        assert [labels for labels, _ in values] == [{"database": "default"}]
        return values[0][1]

    assert database_up() == 1
    broken_database(refused_port)
    started = time.monotonic()
    assert database_up() == 0
    assert time.monotonic() - started < BOUND
