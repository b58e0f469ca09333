"""run_checks, the socket deadline and the PostgreSQL check on paths the endpoint tests do not
reach (found by mutation testing, docs/mutation-testing.md): a check that fails unexpectedly, a
deadline that is not reached, a healthy PostgreSQL with the app's user and libpq options."""

import logging
import socket

import pytest

from monitoring.health.checks import (
    DOWN,
    DatabaseCheck,
    HealthCheck,
    RedisCheck,
    _Deadline,
    run_checks,
)
from tests.monitoring.health.conftest import postgres_at
from tests.services import require_postgres, require_redis

# Shares Redis database 9 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-9")


class BrokenCheck(HealthCheck):
    """A check with a bug: it raises something that is neither ServiceDown nor ServiceDegraded."""

    name = "broken"

    def run(self, *, timeout: float) -> dict:
        raise KeyError("a bug in the check")


def test_a_check_that_fails_unexpectedly_is_down_and_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="monitoring.health"):
        (result,) = run_checks([BrokenCheck()], timeout=30)
    assert result.status == DOWN and result.facts == {}
    assert result.error == "unexpected error (see the application log)"
    assert result.as_dict() == {
        "status": "down",
        "latency_ms": result.latency_ms,
        "error": "unexpected error (see the application log)",
    }
    (record,) = [r for r in caplog.records if r.name == "monitoring.health"]
    assert record.getMessage() == "health check broken failed unexpectedly"
    assert record.exc_info[0] is KeyError


def test_a_deadline_left_before_its_time_has_not_expired_and_leaves_the_socket_usable():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with _Deadline(ours.fileno(), 60) as deadline:
            theirs.sendall(b"x")
            assert ours.recv(1) == b"x"
        assert deadline.expired is False
        theirs.sendall(b"y")  # the deadline's duplicate was closed, not shut down
        assert ours.recv(1) == b"y"


def test_a_healthy_postgresql_answers_with_the_apps_user_and_libpq_options(health_settings):
    require_postgres()
    database = {
        **postgres_at(5432),
        "NAME": "postgres",  # there on every PostgreSQL server
        # passed on to libpq, as the app's own connection gets them; Django-only keys are not
        "OPTIONS": {
            "sslmode": "disable",
            "target_session_attrs": "any",
            "server_side_binding": True,
        },
    }
    health_settings.DATABASES = {**health_settings.DATABASES, "health_pg": database}
    facts = DatabaseCheck(alias="health_pg").run(timeout=10)
    assert facts["vendor"] == "postgresql" and facts["server_version"]
    assert 1 <= facts["connections_used"] <= facts["connections_max"]
    expected = round(100.0 * facts["connections_used"] / facts["connections_max"], 1)
    assert facts["connections_percent"] == expected


def test_a_healthy_redis_answers_with_its_facts():
    require_redis()
    facts = RedisCheck(url="redis://127.0.0.1:6379/9").run(timeout=10)
    assert set(facts) == {
        "server_version",
        "used_memory_bytes",
        "memory_fragmentation_ratio",
        "connected_clients",
        "blocked_clients",
        "role",
    }
    assert facts["server_version"] and facts["role"] == "master"
    assert facts["connected_clients"] >= 1 and facts["used_memory_bytes"] > 0
