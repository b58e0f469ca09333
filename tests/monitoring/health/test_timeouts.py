"""The configured HEALTH_CHECK_TIMEOUT reaches the Redis clients of the health check and of the
collector, so a hung Redis frees their threads in about that time (issue 9: a Redis check
whose socket timeout was 20 times too long passed every test, because the view stops waiting
at the timeout whatever the check's thread does).

The bounds are generous (a loaded machine) yet meaningful: at TIMEOUT = 0.5 s, 20 times too
long is 10 s, far past them. Speed claims live in bench/, not here."""

import time

import pytest

from monitoring.collectors import collectors
from monitoring.health.checks import RedisCheck, ServiceDown, run_checks
from tests.monitoring.health.conftest import TIMEOUT

pytestmark = pytest.mark.django_db

BOUND = TIMEOUT * 4 + 1.0  # 3 s


def test_a_hung_redis_check_returns_within_its_timeout(health_settings, hung):
    check = RedisCheck(url=f"redis://127.0.0.1:{hung.port}/9")
    started = time.monotonic()
    with pytest.raises(ServiceDown, match="Timeout"):
        check.run(timeout=TIMEOUT)
    assert time.monotonic() - started < BOUND
    assert hung.accepted, "the check never reached the hung server"


def test_the_configured_timeout_frees_the_check_for_the_next_probe(health_settings, hung):
    """Through run_checks, as the endpoints call it: one run per target at a time, so a new
    connection reaches the hung server only once the previous run's own timeout has ended it."""
    assert health_settings.HEALTH_CHECK_TIMEOUT == TIMEOUT
    check = RedisCheck(url=f"redis://127.0.0.1:{hung.port}/9")
    deadline = time.monotonic() + BOUND
    while len(hung.accepted) < 2 and time.monotonic() < deadline:
        (result,) = run_checks([check])
        assert result.status == "down"
    assert len(hung.accepted) >= 2, (
        "the first check was still running: its socket timeout is not HEALTH_CHECK_TIMEOUT"
    )


def test_the_redis_collector_is_bounded_by_the_health_check_timeout(health_settings, hung):
    health_settings.REDIS_URL = f"redis://127.0.0.1:{hung.port}/9"
    health_settings.MONITORING_COLLECTOR_BUDGET = 20 * TIMEOUT  # a budget too generous
    collector = collectors().redis
    options = collector.client.connection_pool.connection_kwargs
    assert options["socket_timeout"] == options["socket_connect_timeout"] == TIMEOUT
    started = time.monotonic()
    assert collector.snapshot() == {"up": False, "error": "TimeoutError"}
    assert time.monotonic() - started < BOUND
