"""The Redis collector against the real Redis (database 2), and against one that is down."""

import time

import pytest
from prometheus_client import CollectorRegistry

from monitoring.collectors.redis import RedisCollector, redis_client
from tests.faults import closed_port, hung_server

# Shares Redis database 2 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-2")


def registry_with(collector):
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


@pytest.mark.redis
def test_info_is_read_into_json_and_prometheus(redis_db):
    for i in range(5):
        redis_db.set(f"k{i}", i)
    redis_db.set("short", 1, ex=300)
    redis_db.get("k1")  # a hit
    redis_db.get("missing")  # a miss
    collector = RedisCollector(redis_db)
    reading = collector.snapshot()
    assert reading["up"] is True
    assert reading["unavailable"] == []
    assert reading["server_version"]
    assert reading["memory_used_bytes"] > 0
    assert reading["memory_fragmentation_ratio"] > 0
    assert reading["keyspace_hits_total"] >= 1
    assert reading["keyspace_misses_total"] >= 1
    assert 0 < reading["hit_rate_percent"] < 100
    assert reading["connected_clients"] >= 1
    assert reading["rdb_last_bgsave_ok"] in (0, 1)
    assert reading["databases"]["db2"] == {"keys": 6, "expiring_keys": 1}

    registry = registry_with(collector)
    assert registry.get_sample_value("redis_up") == 1
    assert registry.get_sample_value("redis_db_keys", {"db": "db2"}) == 6
    assert registry.get_sample_value("redis_db_expiring_keys", {"db": "db2"}) == 1
    for name in (
        "redis_memory_used_bytes",
        "redis_memory_fragmentation_ratio",
        "redis_ops_per_second",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_connected_clients",
        "redis_blocked_clients",
        "redis_rdb_last_save_timestamp_seconds",
        "redis_aof_enabled",
        "redis_expired_keys_total",
        "redis_evicted_keys_total",
    ):
        assert registry.get_sample_value(name) is not None, name


def test_a_stopped_redis_is_reported_down_not_as_zeros():
    collector = RedisCollector(redis_client(f"redis://127.0.0.1:{closed_port()}/2", timeout=0.5))
    assert collector.snapshot() == {"up": False, "error": "ConnectionError"}
    registry = registry_with(collector)
    assert registry.get_sample_value("redis_up") == 0
    assert registry.get_sample_value("redis_memory_used_bytes") is None


def test_a_hung_redis_costs_a_scrape_at_most_the_client_timeout():
    with hung_server() as hung:
        collector = RedisCollector(redis_client(f"redis://127.0.0.1:{hung.port}/2", timeout=0.3))
        started = time.monotonic()
        assert collector.snapshot() == {"up": False, "error": "TimeoutError"}
        # Generous for a loaded machine; a timeout 20 times too long (6 s) still fails it.
        assert time.monotonic() - started < 3.0
