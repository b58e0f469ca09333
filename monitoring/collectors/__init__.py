"""One collector per source, built from settings once per process.

`register_collectors(registry)` is called once from `MonitoringConfig.ready()`; the JSON
endpoints read the same objects through `collectors()`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from monitoring.collectors.backup import BackupCollector
from monitoring.collectors.business import BusinessCollector
from monitoring.collectors.celery import CeleryCollector
from monitoring.collectors.database import DatabaseCollector
from monitoring.collectors.maintenance_mode import MaintenanceModeCollector
from monitoring.collectors.outbox import OutboxCollector
from monitoring.collectors.redis import RedisCollector, redis_client
from monitoring.collectors.shop_wide import (
    AlwaysHeld,
    BrokerReachable,
    LeaderGauge,
    ShopLease,
    ShopWide,
)
from monitoring.collectors.supervisor import SupervisorCollector
from monitoring.collectors.system import SystemCollector
from monitoring.metrics import register_collector

__all__ = ["Collectors", "collectors", "register_collectors"]


@dataclass(frozen=True)
class Collectors:
    system: SystemCollector
    database: DatabaseCollector
    business: BusinessCollector
    outbox: OutboxCollector
    redis: RedisCollector | None  # None: REDIS_URL unset (Redis and Celery are disabled)
    celery: CeleryCollector | None

    def enabled(self) -> list:
        return [
            c
            for c in (
                self.system,
                self.database,
                self.business,
                self.outbox,
                self.redis,
                self.celery,
            )
            if c
        ]


@functools.cache
def collectors() -> Collectors:
    interval = getattr(settings, "MONITORING_COLLECTOR_INTERVAL", 15.0)
    budget = getattr(settings, "MONITORING_COLLECTOR_BUDGET", 1.0)
    redis_url = settings.REDIS_URL
    # A hung Redis costs a scrape at most the budget (and never more than a health check may
    # take) per round trip (INFO, queue lengths).
    redis_timeout = min(budget, settings.HEALTH_CHECK_TIMEOUT)
    client = redis_client(redis_url, timeout=redis_timeout) if redis_url else None
    if client is not None:
        from config.celery import app

        celery = CeleryCollector(app=app, client=client, workers_interval=interval)
    else:
        celery = None
    # Imported here: the health checks import this package's Redis and Celery readers.
    from monitoring.health.checks import database_reachable

    return Collectors(
        system=SystemCollector(),
        database=DatabaseCollector(
            alias="default",
            interval=interval,
            budget=budget,
            reachable=functools.partial(database_reachable, alias="default"),
        ),
        business=BusinessCollector(
            alias="default",
            interval=getattr(settings, "MONITORING_BUSINESS_INTERVAL", 60.0),
            budget=budget,
        ),
        outbox=OutboxCollector(alias="default", interval=interval, budget=budget),
        redis=None if client is None else RedisCollector(client),
        celery=celery,
    )


_registered = False


def shop_lease(found: Collectors) -> ShopLease | AlwaysHeld:
    """`MONITORING_SHOP_WIDE`: `every-host` (one host: it exports everything) or `lease`
    (several hosts: the Redis lease holder exports the shop-wide series)."""
    mode = getattr(settings, "MONITORING_SHOP_WIDE", "every-host")
    if mode == "every-host":
        return AlwaysHeld()
    if mode != "lease":
        raise ImproperlyConfigured(
            f"MONITORING_SHOP_WIDE={mode!r}: expected 'every-host' or 'lease'"
        )
    if found.redis is None:
        raise ImproperlyConfigured("MONITORING_SHOP_WIDE=lease needs REDIS_URL (the lease)")
    return ShopLease(
        found.redis.client,
        host_id=settings.MONITORING_HOST_ID,
        seconds=settings.MONITORING_SHOP_LEASE_SECONDS,
    )


def register_collectors(register: Callable[[object], None] | None = None) -> None:
    """Register every enabled collector, once per process, with `register` (by default the
    project's registry, `monitoring.metrics.register_collector`, which the Prometheus endpoint
    renders). Never prometheus_client's global registry: sampling it in a test must not run
    database queries."""
    global _registered
    if _registered:
        return
    register = register or register_collector
    found = collectors()
    lease = shop_lease(found)
    register(found.system)
    # Shop-wide figures (shared state): one host exports them (docs/scale.md).
    register(ShopWide(found.database, lease, per_host=frozenset({"database_up"})))
    register(ShopWide(found.business, lease))
    register(ShopWide(found.outbox, lease))
    if found.redis is not None:
        register(ShopWide(found.redis, lease, per_host=frozenset({"redis_up"})))
    if found.celery is not None:
        register(ShopWide(found.celery, lease, elsewhere=BrokerReachable(found.celery.client)))
    register(LeaderGauge(lease))
    # `make up`'s restarts (scripts/up.py writes the file; absent elsewhere: nothing exported).
    register(SupervisorCollector(settings.VAR_DIR / "supervisor.json"))
    register(MaintenanceModeCollector())
    register(BackupCollector(Path(settings.BACKUP_DIR)))
    _registered = True
