"""Shop-wide series come from one host at a time: hosts sharing a real Redis (db 7) elect one
exporter with a lease; the others keep only their per-host reachability series."""

import socket
import time

import pytest

from monitoring.collectors.redis import RedisCollector, redis_client
from monitoring.collectors.shop_wide import (
    LEASE_KEY,
    AlwaysHeld,
    BrokerReachable,
    LeaderGauge,
    ShopLease,
    ShopWide,
)
from tests.services import require_redis

pytestmark = [pytest.mark.redis, pytest.mark.xdist_group("redis-db-7")]

URL = "redis://127.0.0.1:6379/7"


@pytest.fixture
def client():
    require_redis()
    client = redis_client(URL, timeout=1.0)
    client.delete(LEASE_KEY)
    yield client
    client.delete(LEASE_KEY)


def names(collector) -> set[str]:
    return {family.name for family in collector.collect()}


def until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_one_host_of_three_holds_the_lease_and_keeps_it_while_renewing(client):
    hosts = [ShopLease(client, host_id=f"web{i}", seconds=0.5, memo=0) for i in range(3)]
    assert [h.held() for h in hosts] == [True, False, False]
    for _ in range(4):  # renewed at each scrape, longer than one lease
        time.sleep(0.2)
        assert [h.held() for h in hosts] == [True, False, False]


def test_another_host_takes_over_when_the_holder_stops_renewing(client):
    first, second = (ShopLease(client, host_id=h, seconds=0.3, memo=0) for h in ("a", "b"))
    assert first.held() and not second.held()
    assert until(second.held), "the lease never passed on"
    assert not first.held()


def test_the_scrapes_of_one_moment_agree(client):
    lease = ShopLease(client, host_id="web1", seconds=30, memo=60)
    assert lease.held()
    client.set(LEASE_KEY, "someone-else")
    assert lease.held(), "within memo the answer must not change mid-scrape"


def test_no_redis_means_no_host_exports_shop_wide_series():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = redis_client(f"redis://127.0.0.1:{port}/7", timeout=0.5)
    lease = ShopLease(dead, host_id="web1", memo=0)
    assert lease.held() is False
    assert "ConnectionError" in lease.error
    assert names(LeaderGauge(lease)) == {"monitoring_shop_collector_leader"}
    assert [s.value for f in LeaderGauge(lease).collect() for s in f.samples] == [0.0]
    assert [s.value for f in BrokerReachable(dead).collect() for s in f.samples] == [0.0]


def test_the_holder_exports_redis_figures_the_others_only_redis_up(client):
    holder, other = (
        ShopWide(
            RedisCollector(client),
            ShopLease(client, host_id=h, memo=0),
            per_host=frozenset({"redis_up"}),
        )
        for h in ("web1", "web2")
    )
    full = names(holder)
    assert {"redis_up", "redis_memory_used_bytes", "redis_keyspace_hits"} <= full
    assert names(other) == {"redis_up"}


def test_a_host_without_the_lease_does_not_read_the_collector(client):
    class Counting:
        reads = 0

        def collect(self):
            Counting.reads += 1
            return iter(())

    ShopLease(client, host_id="web1").held()
    other = ShopWide(Counting(), ShopLease(client, host_id="web2"))
    assert list(other.collect()) == [] and Counting.reads == 0
    standing_in = ShopWide(Counting(), ShopLease(client, host_id="web3"), elsewhere=None)
    assert list(standing_in.collect()) == []
    broker = ShopWide(
        Counting(), ShopLease(client, host_id="web4"), elsewhere=BrokerReachable(client)
    )
    assert names(broker) == {"celery_broker_up"} and Counting.reads == 0


def test_one_host_exports_everything_without_redis():
    assert AlwaysHeld().held()
    assert [s.value for f in LeaderGauge(AlwaysHeld()).collect() for s in f.samples] == [1.0]


def test_an_unknown_mode_is_refused(settings):
    from django.core.exceptions import ImproperlyConfigured

    from monitoring.collectors import collectors, shop_lease

    settings.MONITORING_SHOP_WIDE = "sometimes"
    with pytest.raises(ImproperlyConfigured, match="'sometimes'"):
        shop_lease(collectors())


def test_the_endpoint_says_which_host_exports(client):
    from monitoring.metrics import exposition

    assert b"monitoring_shop_collector_leader 1.0" in exposition()
