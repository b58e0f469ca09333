"""The "degraded" path (a component works but is past a threshold of thresholds.yml) and
threshold overrides: the operator's file, not the defaults, decides."""

import threading
import time
from pathlib import Path

import pytest
import yaml

from monitoring.collectors.redis import redis_client
from monitoring.health.checks import DEGRADED, OK, RedisCheck, overall_status, run_checks
from tests.services import require_redis

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("redis-db-9")]

REPO = Path(__file__).resolve().parents[3]
REDIS_URL = "redis://127.0.0.1:6379/9"
BLOCKING_KEY = "health-test-blocked-list"


@pytest.fixture
def thresholds(health_settings, tmp_path):
    """Write the shipped thresholds.yml with `text`'s values over it into a fresh configuration
    directory (a partial file is refused as invalid, and the last good copy kept)."""

    def write(text: str) -> None:
        merged = yaml.safe_load((REPO / "deploy/prometheus/thresholds.yml").read_text())
        for section, values in yaml.safe_load(text).items():
            merged[section].update(values)
        directory = tmp_path / f"config-{time.monotonic_ns()}"
        directory.mkdir()
        (directory / "thresholds.yml").write_text(yaml.safe_dump(merged))
        health_settings.MONITORING_CONFIG_DIR = directory

    return write


@pytest.fixture
def blocked_redis_client():
    """One client blocked in BLPOP on Redis database 9 until the test ends."""
    require_redis()
    blocker = redis_client(REDIS_URL, timeout=60)
    observer = redis_client(REDIS_URL, timeout=5)
    thread = threading.Thread(target=blocker.blpop, args=([BLOCKING_KEY], 30), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while observer.info("clients")["blocked_clients"] < 1:
        assert time.monotonic() < deadline, "the client never blocked"
        time.sleep(0.05)
    yield
    observer.lpush(BLOCKING_KEY, "done")  # frees the blocked client
    thread.join(timeout=20)
    observer.delete(BLOCKING_KEY)
    observer.close()
    blocker.close()


@pytest.mark.redis
def test_redis_past_its_blocked_clients_threshold_is_degraded(
    reader, health_settings, thresholds, blocked_redis_client
):
    health_settings.REDIS_URL = REDIS_URL
    thresholds("redis:\n  blocked_clients: 0\n")
    response = reader("/api/health/redis/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["error"] == "blocked clients above the threshold"
    assert body["blocked_clients"] >= 1  # the facts come with a degraded answer
    assert body["server_version"]


@pytest.mark.redis
def test_a_raised_threshold_override_makes_the_same_redis_ok(
    reader, health_settings, thresholds, blocked_redis_client
):
    health_settings.REDIS_URL = REDIS_URL
    thresholds("redis:\n  blocked_clients: 100000\n")
    response = reader("/api/health/redis/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    (result,) = run_checks([RedisCheck(url=REDIS_URL)])
    assert result.status == OK


@pytest.mark.postgres
def test_database_past_its_connection_threshold_makes_the_whole_answer_degraded(reader, thresholds):
    """Redis and Celery are disabled here, so the overall answer is the database's: degraded,
    and 503 (only an all-ok answer is 200)."""
    thresholds("database:\n  connection_utilization: 0.0001\n")
    response = reader("/api/health/detailed/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    database = body["components"]["database"]
    assert database["status"] == "degraded"
    assert database["error"] == "connection utilisation above the threshold"
    assert database["connections_percent"] > 0.0001
    assert {body["components"][c]["status"] for c in ("redis", "celery")} == {"disabled"}

    thresholds("database:\n  connection_utilization: 100\n")
    response = reader("/api/health/detailed/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_overall_status_orders_down_over_degraded_over_ok():
    from monitoring.health.checks import DISABLED, DOWN, CheckResult

    def results(*statuses):
        return [CheckResult(f"c{i}", status, 1.0) for i, status in enumerate(statuses)]

    assert overall_status(results(OK, DISABLED)) == OK
    assert overall_status(results(OK, DEGRADED, DISABLED)) == DEGRADED
    assert overall_status(results(DEGRADED, DOWN, OK)) == DOWN
