"""Shop-wide series exported by one host at a time, whichever hosts Prometheus scrapes.

Business, database-server, outbox, Redis-server and Celery-queue figures are read from shared
state (PostgreSQL, Redis): every web or worker host would read the same numbers, and a `sum`
over instances would count them once per host. So with `MONITORING_SHOP_WIDE=lease` the hosts
elect one exporter with a Redis lease (SET NX PX: Redis is the only arbiter, nothing home-made):
the holder renews it at each scrape, the others leave those series out. A host that dies
stops renewing; after `MONITORING_SHOP_LEASE_SECONDS` the next host scraped takes over.
With `every-host` (the default, one host) nothing changes.

Per-host reachability series (`database_up`, `redis_up`: "can *this* host reach it") stay on
every host. `monitoring_shop_collector_leader` (1 on the holder, 0 elsewhere) shows who holds
the lease, so `sum(monitoring_shop_collector_leader)` is 1 in a healthy cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric

LEASE_KEY = "monitoring:shop-wide-exporter"

# Take the lease if free, renew it if ours; 1 when we hold it afterwards. One round trip, atomic.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class ShopLease:
    """Whether this host exports the shop-wide series now.

    The answer is kept for `memo` seconds so that the collectors of one scrape agree (and a
    scrape costs one round trip). Redis unreachable: no host can know it is alone, so none
    exports shop-wide series (absent, never counted twice); `error` says why.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        host_id: str,
        seconds: float = 45.0,
        memo: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.host_id = host_id
        self.seconds = seconds
        self.memo = memo
        self.clock = clock
        self.error: str | None = None
        self._lock = threading.Lock()
        self._held = False
        self._asked_at: float | None = None
        self._script = client.register_script(_ACQUIRE)

    def held(self) -> bool:
        with self._lock:
            if self._asked_at is not None and self.clock() - self._asked_at < self.memo:
                return self._held
            try:
                self._held = bool(
                    self._script(keys=[LEASE_KEY], args=[self.host_id, int(self.seconds * 1000)])
                )
                self.error = None
            except redis.RedisError as exc:
                self._held = False
                self.error = f"{type(exc).__name__}: {exc}"[:300]
            self._asked_at = self.clock()
            return self._held


class AlwaysHeld:
    """`every-host`: a single host exports everything (no Redis needed)."""

    host_id = ""
    error = None

    def held(self) -> bool:
        return True


class ShopWide:
    """A collector whose families only the lease holder exports, but for `per_host` names.

    Without the lease the collector is only read when `per_host` names something to keep;
    `elsewhere` (another collector) then stands in for it: a business query or a Celery
    broadcast runs on one host, not on every one.
    """

    def __init__(
        self,
        collector,
        lease: ShopLease | AlwaysHeld,
        *,
        per_host: frozenset = frozenset(),
        elsewhere=None,
    ) -> None:
        self.collector = collector
        self.lease = lease
        self.per_host = per_host
        self.elsewhere = elsewhere
        # monitoring_collector_errors_total{collector} names the wrapped collector.
        self.guard_name = type(collector).__name__

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.lease.held():
            yield from self.collector.collect()
            return
        if self.elsewhere is not None:
            yield from self.elsewhere.collect()
        if not self.per_host:
            return
        for family in self.collector.collect():
            if family.name in self.per_host:
                yield family

    # The JSON endpoints read collectors directly (same host, same numbers): pass through.
    def __getattr__(self, name: str):
        if name == "collector":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.collector, name)


class BrokerReachable:
    """`celery_broker_up` from a PING, for hosts that leave the queue reads to the holder:
    whether *this* host can queue tasks is per host, and must not vanish with the lease."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        try:
            up = bool(self.client.ping())
        except redis.RedisError:
            up = False
        family = GaugeMetricFamily("celery_broker_up", "1 if the broker answered at this scrape.")
        family.add_metric([], float(up))
        yield family


class LeaderGauge:
    """`monitoring_shop_collector_leader`: 1 on the host holding the lease, else 0."""

    def __init__(self, lease: ShopLease | AlwaysHeld) -> None:
        self.lease = lease

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "monitoring_shop_collector_leader",
            "1 if this host exports the shop-wide series (business, database, queues) now.",
        )
        family.add_metric([], float(self.lease.held()))
        yield family
