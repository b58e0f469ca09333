"""Issue 11's drill: Redis killed, and Redis frozen, while orders and payments are placed.

Real processes: gunicorn (2 workers, our config), a Celery worker, a redis-server of the
test's own and an SMTP server, on a PostgreSQL database of the test's own (as in production:
row locks, where SQLite's busy-wait would starve some of 30 simultaneous writers past 2 s). While Redis is down or hung, 20
orders and 10 payments are placed at once: every request must answer 2xx within 2 s. Once
Redis is back, every confirmation email must arrive exactly once and every payment be captured
exactly once; the public health check's p99 stays under 50 ms throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.monitoring.notify.channels.servers import SmtpServer
from tests.redis_server import RedisServer, require_redis_server
from tests.services import require_postgres
from tests.wait import wait_for

# `alone`: the p99 under 50 ms is a latency claim, measured with the machine to itself (`make
# test` runs it after the parallel run; other workers' servers once took it to 64 ms).
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.alone]

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"

ORDERS, PAYMENTS = 20, 10
MIN_PROBES = 200
CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}

SETUP = """
import json
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from shop.catalog.models import Category, Product
category = Category.objects.create(name="Prints", slug="prints")
product = Product.objects.create(sku="DRILL-1", name="Drill print", category=category,
                                 price="12.50", stock_quantity=100000)
tokens = []
for n in range(%d):
    user = User.objects.create_user(f"drill{n}", f"drill{n}@example.com", "pw-drill-123")
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps({"product": product.pk, "tokens": tokens}))
"""


class HealthProbe:
    """tests/health_probe.py in a process of its own, polling /api/health/ every 20 ms."""

    def __init__(self, base_url: str, out: Path) -> None:
        self.out = out
        self._file = open(out, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.health_probe", f"{base_url}/api/health/"],
            cwd=ROOT, stdout=self._file,
        )  # fmt: skip

    def answers(self) -> list[tuple[int, float]]:
        lines = self.out.read_text().splitlines()
        return [(int(status), float(t)) for status, t in (line.split() for line in lines[:-1])]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self._file.close()


class Shop:
    """The running stack and what the test reads from it."""

    def __init__(self, db_url: str, web: Gunicorn, smtp: SmtpServer, redis: RedisServer) -> None:
        self.db_url, self.web, self.smtp, self.redis = db_url, web, smtp, redis
        self.tmp = web.tmp
        self.data: dict = {}
        self.next_user = 0

    def client(self) -> tuple[httpx.Client, int]:
        token = self.data["tokens"][self.next_user]
        self.next_user += 1
        # A new connection per request: gunicorn closes idle keep-alive connections after 2 s.
        client = httpx.Client(
            base_url=self.web.base_url,
            headers={"Authorization": f"Token {token}"},
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        return client, self.next_user - 1

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.db_url) as db:
            return db.execute(sql, params).fetchall()

    def emails_by_order(self) -> Counter[str]:
        subjects = (message_from_bytes(data)["Subject"] for _, _, data in self.smtp.messages)
        return Counter(s.split()[3] for s in subjects if s and s.startswith("Pasargad"))

    def jobs_unfinished(self) -> list[tuple]:
        return self.query("SELECT key, state FROM outbox_job WHERE state != 'done'")


@pytest.fixture(scope="module")
def database():
    require_postgres()
    name = os.environ.get("TEST_DB_NAME", "test_pasargad") + "_drill"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shop(tmp_path_factory, database):
    require_redis_server()
    tmp = tmp_path_factory.mktemp("drill")
    smtp = SmtpServer()
    redis = RedisServer(tmp).start()
    extra = {
        "DATABASE_URL": database,
        "REDIS_URL": redis.url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "OUTBOX_RELAY_THREAD": "1",
        "OUTBOX_POLL_SECONDS": "0.5",
        "OUTBOX_REDELIVER_SECONDS": "5",
        "REDIS_BREAKER_MAX_RESET": "2",
        "REDIS_TIMEOUT": "1",
    }
    web = Gunicorn(tmp, workers=2, **extra)
    web.migrate()
    setup = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SETUP % (PAYMENTS * 2 + ORDERS * 2)],
        cwd=ROOT, env=single_process(web.env), check=True, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    worker_log = open(tmp / "worker.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
        ],
        cwd=ROOT, env={**single_process(web.env), "LOG_TO_STDOUT_ONLY": "1"},
        stdout=worker_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        web.start()
        stack = Shop(database, web, smtp, redis)
        stack.data = json.loads(setup.stdout.strip().splitlines()[-1])
        wait_for(lambda: b"ready" in (tmp / "worker.log").read_bytes(), 60, "worker ready")
        yield stack
    finally:
        web.stop()
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker_log.close()
        redis.stop()
        smtp.close()
        os.environ.get("KEEP_DRILL") and print(f"drill files: {tmp}")


def place_order(shop: Shop) -> tuple[httpx.Client, httpx.Response]:
    client, _ = shop.client()
    items = {"items": [{"product": shop.data["product"], "quantity": 1}]}
    return client, client.post("/api/orders/", json=items)


def timed(call) -> tuple[int, float, str]:
    started = time.perf_counter()
    response = call()
    return response.status_code, time.perf_counter() - started, response.text


def drill(shop: Shop, fault, recover) -> None:
    # Orders to pay during the fault, placed while Redis is up.
    to_pay = [place_order(shop) for _ in range(PAYMENTS)]
    assert all(r.status_code == 201 for _, r in to_pay), [r.text for _, r in to_pay]
    new_orders = [shop.client()[0] for _ in range(ORDERS)]
    items = {"items": [{"product": shop.data["product"], "quantity": 1}]}
    calls = [lambda c=c: c.post("/api/orders/", json=items) for c in new_orders] + [
        lambda c=c, r=r: c.post("/api/payments/", json={"order": r.json()["id"], **CARD})
        for c, r in to_pay
    ]
    probe = HealthProbe(shop.web.base_url, shop.tmp / "health.txt")
    try:
        wait_for(lambda: len(probe.answers()) >= 10, 30, "health probe running")
        fault()
        with ThreadPoolExecutor(len(calls)) as pool:
            answers = list(pool.map(timed, calls))
        recover()
        numbers = [r.json()["number"] for _, r in to_pay] + [
            json.loads(text)["number"] for status, _, text in answers[:ORDERS] if status == 201
        ]
        # Every job of the drill done: no email or capture can still come (or come twice).
        wait_for(lambda: not shop.jobs_unfinished(), 90, "the outbox drained")
        # A p99 over fewer than 100 probes is just the slowest one: probe on until there are
        # enough (the burst's 30 requests take under a second of the 4 s or more this spans).
        wait_for(lambda: len(probe.answers()) >= MIN_PROBES, 60, f"{MIN_PROBES} health probes")
    finally:
        probe.stop()
        for client in new_orders + [c for c, _ in to_pay]:
            client.close()
    slow_or_failed = [
        (s, round(t, 3), text[:300]) for s, t, text in answers if s >= 300 or t >= 2.0
    ]
    assert not slow_or_failed
    emails = shop.emails_by_order()
    assert len(numbers) == ORDERS + PAYMENTS
    assert {n: emails[n] for n in numbers} == dict.fromkeys(numbers, 1)
    paid_ids = [r.json()["id"] for _, r in to_pay]
    marks = ",".join(["%s"] * len(paid_ids))
    captures = shop.query(
        "SELECT p.id, p.captured_at IS NOT NULL, j.state, j.attempts FROM payments_payment p "
        "JOIN outbox_job j ON j.key = 'payment_capture_task:' || p.id "
        f"WHERE p.order_id IN ({marks})",
        *paid_ids,
    )
    assert len(captures) == PAYMENTS
    assert all(
        captured and state == "done" and attempts == 1 for _, captured, state, attempts in captures
    ), captures
    probes = probe.answers()
    assert all(status == 200 for status, _ in probes), probes
    latencies = sorted(t for _, t in probes)
    p99 = latencies[int(len(latencies) * 0.99)]
    slowest = max(t for _, t, _ in answers)
    print(
        f"drill: slowest request {slowest:.3f} s; health p99 {p99 * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms of {len(latencies)} probes"
    )
    assert p99 < 0.05, f"health p99 {p99:.3f} s of {len(latencies)}; slowest {latencies[-5:]}"


def test_redis_killed_then_restarted(shop):
    def recover() -> None:
        shop.redis.start()  # same port, empty: the messages queued before the kill are gone

    drill(shop, shop.redis.kill, recover)


def test_redis_frozen_then_thawed(shop):
    drill(shop, shop.redis.freeze, shop.redis.thaw)
