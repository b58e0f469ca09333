"""Redis: memory, fragmentation, operations, hit ratio, clients, persistence, keyspace (INFO)."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from monitoring.collectors.base import Collector, Families, Reading, unavailable_keys


def redis_client(url: str, *, timeout: float) -> redis.Redis:
    """A client that gives up after `timeout` seconds and never retries: a hung server must not
    hold a request (redis-py retries three times by default)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def _hit_rate(hits: int | None, misses: int | None) -> float | None:
    if hits is None or misses is None or hits + misses == 0:
        return None
    return round(100.0 * hits / (hits + misses), 3)


def reading_from_info(info: dict[str, Any]) -> Reading:
    """The reading from one `INFO` answer; a field this server does not report stays `None`."""
    hits, misses = info.get("keyspace_hits"), info.get("keyspace_misses")
    databases = {
        name: {"keys": value.get("keys", 0), "expiring_keys": value.get("expires", 0)}
        for name, value in info.items()
        if name.startswith("db") and name[2:].isdigit() and isinstance(value, dict)
    }
    values: dict[str, Any] = {
        "server_version": info.get("redis_version"),
        "uptime_seconds": info.get("uptime_in_seconds"),
        "memory_used_bytes": info.get("used_memory"),
        "memory_rss_bytes": info.get("used_memory_rss"),
        "memory_max_bytes": info.get("maxmemory"),
        "memory_fragmentation_ratio": info.get("mem_fragmentation_ratio"),
        "ops_per_second": info.get("instantaneous_ops_per_sec"),
        "commands_processed_total": info.get("total_commands_processed"),
        "keyspace_hits_total": hits,
        "keyspace_misses_total": misses,
        "hit_rate_percent": _hit_rate(hits, misses),
        "connected_clients": info.get("connected_clients"),
        "blocked_clients": info.get("blocked_clients"),
        "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
        "rdb_last_save_timestamp_seconds": info.get("rdb_last_save_time"),
        "rdb_last_bgsave_ok": _ok_flag(info.get("rdb_last_bgsave_status")),
        "rdb_bgsave_in_progress": info.get("rdb_bgsave_in_progress"),
        "aof_enabled": info.get("aof_enabled"),
        "aof_rewrite_in_progress": info.get("aof_rewrite_in_progress"),
        "aof_last_write_ok": _ok_flag(info.get("aof_last_write_status")),
        "expired_keys_total": info.get("expired_keys"),
        "evicted_keys_total": info.get("evicted_keys"),
    }
    return {**values, "databases": databases, "unavailable": unavailable_keys(values)}


def _ok_flag(status: str | None) -> int | None:
    return None if status is None else int(status == "ok")


class RedisCollector(Collector):
    """Reads `INFO` from the given client at each scrape (one round trip, bounded by the
    client's socket timeouts). An unreachable server gives `redis_up 0` and nothing else."""

    name = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def read(self) -> Reading:
        try:
            info = self.client.info("all")
        except redis.RedisError as exc:
            return {"up": False, "error": type(exc).__name__}
        return {"up": True, **reading_from_info(info)}

    def families(self, reading: Reading) -> Families:
        return families_from_reading(reading)


_GAUGES = {
    "memory_used_bytes": ("redis_memory_used_bytes", "Memory allocated by Redis."),
    "memory_rss_bytes": ("redis_memory_rss_bytes", "Resident memory of the Redis process."),
    "memory_max_bytes": ("redis_memory_max_bytes", "maxmemory setting (0: no limit)."),
    "memory_fragmentation_ratio": (
        "redis_memory_fragmentation_ratio",
        "RSS divided by allocated memory.",
    ),
    "ops_per_second": ("redis_ops_per_second", "Commands per second (Redis' own estimate)."),
    "hit_rate_percent": (
        "redis_keyspace_hit_rate_percent",
        "Keyspace hits over lookups since start.",
    ),
    "connected_clients": ("redis_connected_clients", "Client connections."),
    "blocked_clients": ("redis_blocked_clients", "Clients blocked in a blocking call."),
    "rdb_changes_since_last_save": (
        "redis_rdb_changes_since_last_save",
        "Writes since the last RDB save.",
    ),
    "rdb_last_save_timestamp_seconds": (
        "redis_rdb_last_save_timestamp_seconds",
        "Unix time of the last successful RDB save.",
    ),
    "rdb_last_bgsave_ok": ("redis_rdb_last_bgsave_ok", "1 if the last RDB background save worked."),
    "rdb_bgsave_in_progress": ("redis_rdb_bgsave_in_progress", "1 while an RDB save runs."),
    "aof_enabled": ("redis_aof_enabled", "1 if the append-only file is on."),
    "aof_rewrite_in_progress": ("redis_aof_rewrite_in_progress", "1 while an AOF rewrite runs."),
    "aof_last_write_ok": ("redis_aof_last_write_ok", "1 if the last AOF write worked."),
    "uptime_seconds": ("redis_uptime_seconds", "Seconds since the Redis server started."),
}
_COUNTERS = {
    "commands_processed_total": ("redis_commands_processed_total", "Commands processed."),
    "keyspace_hits_total": ("redis_keyspace_hits_total", "Successful key lookups."),
    "keyspace_misses_total": ("redis_keyspace_misses_total", "Failed key lookups."),
    "expired_keys_total": ("redis_expired_keys_total", "Keys removed because they expired."),
    "evicted_keys_total": ("redis_evicted_keys_total", "Keys evicted for the memory limit."),
}


def families_from_reading(reading: Reading) -> Families:
    families = Families()
    families.gauge("redis_up", "1 if Redis answered INFO at this scrape.", int(reading["up"]))
    if not reading["up"]:
        return families
    for key, (name, doc) in _GAUGES.items():
        families.gauge(name, doc, reading[key])
    for key, (name, doc) in _COUNTERS.items():
        families.counter(name, doc, reading[key])
    for db, counts in reading["databases"].items():
        families.gauge("redis_db_keys", "Keys per database.", counts["keys"], db=db)
        families.gauge(
            "redis_db_expiring_keys",
            "Keys with an expiry per database.",
            counts["expiring_keys"],
            db=db,
        )
    return families
