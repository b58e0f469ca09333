"""The relay and the cache against a redis-server of the test's own, killed and frozen: the
broker's and the cache's waits are bounded by their timeouts and then by the open breaker."""

import time

import kombu.pools
import pytest
import redis
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from shop.breaker import breaker
from shop.cache import ResilientRedisCache
from shop.outbox.models import Job
from shop.outbox.relay import relay_once
from shop.outbox.services import enqueue, run_job
from tests.redis_server import RedisServer, require_redis_server
from tests.shop.outbox.test_outbox import flaky
from tests.wait import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.db]

TIMEOUT = 0.5


def _reset_pools() -> None:
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_server(tmp_path):
    require_redis_server()
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server, db):
    """This process publishes to the test's Redis, with the settings' kind of timeouts."""
    keys = ("task_always_eager", "broker_url", "broker_transport_options",
            "broker_connection_timeout")  # fmt: skip
    saved = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=redis_server.url,
        broker_transport_options={"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT},
        broker_connection_timeout=TIMEOUT,
    )
    _reset_pools()
    yield redis_server
    celery_app.conf.update(saved)
    _reset_pools()


def queued(server: RedisServer) -> int:
    return redis.Redis(port=server.port).llen("celery")


def new_job(key: str) -> Job:
    with transaction.atomic():
        return enqueue(flaky, key, key=key)


def test_a_killed_broker_keeps_the_job_and_the_relay_sends_it_on_return(broker, settings):
    settings.REDIS_BREAKER_RESET = 0.2
    broker.kill()
    job = new_job("k1")
    assert relay_once() == 0  # refused: the job goes back to pending
    job.refresh_from_db()
    assert job.state == Job.State.PENDING
    assert breaker("redis").is_open
    started = time.monotonic()
    assert relay_once() == 0
    assert time.monotonic() - started < 0.1  # the breaker fails fast: no connection tried
    broker.start()
    wait_for(lambda: relay_once() == 1, 15, "the relay sends once Redis is back")
    job.refresh_from_db()
    assert job.state == Job.State.SENT and queued(broker) == 1
    assert run_job(job.pk) == "done"


def test_a_frozen_broker_costs_one_timeout_then_nothing(broker, settings):
    settings.REDIS_BREAKER_RESET = 0.2
    broker.freeze()
    new_job("f1")
    started = time.monotonic()
    assert relay_once() == 0
    assert time.monotonic() - started < TIMEOUT * 4 + 1
    assert breaker("redis").is_open
    new_job("f2")
    started = time.monotonic()
    assert relay_once() == 0
    assert time.monotonic() - started < 0.1
    assert set(Job.objects.values_list("state", flat=True)) == {Job.State.PENDING}
    broker.thaw()

    def all_sent() -> bool:
        relay_once()
        return not Job.objects.filter(state=Job.State.PENDING).exists()

    wait_for(all_sent, 15, "both sent once Redis answers")
    assert queued(broker) == 2


def test_the_cache_degrades_to_a_miss_within_its_timeout(redis_server):
    cache = ResilientRedisCache(
        redis_server.url,
        {"OPTIONS": {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}},
    )
    cache.set("k", "v")
    assert cache.get("k") == "v"
    redis_server.freeze()
    try:
        started = time.monotonic()
        assert cache.get("k", "missed") == "missed"
        assert time.monotonic() - started < TIMEOUT * 4 + 1  # redis-py may reconnect once
        started = time.monotonic()
        assert cache.get("k", "missed") == "missed"  # the breaker is open: no wait at all
        cache.set("k", "w")
        assert time.monotonic() - started < 0.05
    finally:
        redis_server.thaw()
    wait_for(lambda: cache.get("k") == "v", 15, "the cache is back")


def test_a_job_that_cannot_be_sent_is_dead_and_does_not_stop_the_others(broker):
    with transaction.atomic():
        Job.objects.create(key="gone", task="shop.no_such_task", due_at=timezone.now())
    new_job("after")
    assert relay_once() == 2
    assert dict(Job.objects.values_list("key", "state")) == {"gone": "dead", "after": "sent"}
    assert not breaker("redis").is_open and queued(broker) == 1
