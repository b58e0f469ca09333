"""Issue 4's acceptance: the real log output of the running system, under gunicorn and Celery.

One stack for the module: gunicorn with several workers (config/gunicorn.conf.py), a Celery
worker on Redis database 4, the monitor scraping the app's Prometheus endpoint with the bearer
token, an SMTP inbox for the order confirmation, SQLite in a tmp dir, and LOG_DIR in that tmp
dir, so every process appends JSON lines to the same app.log/access.log.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicorn import ROOT, TOKEN, Gunicorn, single_process
from tests.services import require_redis

pytestmark = [pytest.mark.redis, pytest.mark.slow]

BROKER = "redis://127.0.0.1:6379/4"
DECLINED_CARD = "4000000000000002"  # the sandbox gateway's card_declined card
REQUIRED = {"timestamp", "level", "logger", "message", "request_id", "user_id", "environment"}
SEED = """
import json, django
django.setup()
from decimal import Decimal
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from shop.catalog.models import Category, Product
user = User.objects.create_user("leyla", "leyla@example.com", "leyla-pass-123")
category = Category.objects.create(name="Canvas", slug="canvas")
product = Product.objects.create(
    sku="CNV-1", name="Canvas", category=category, price=Decimal("30.00"), stock_quantity=50
)
print(json.dumps({"token": Token.objects.create(user=user).key, "user_id": user.pk,
                  "product_id": product.pk}))
"""


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log_dir = tmp / "log"
        self.inbox: list[bytes] = []
        self.smtp = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler
        self.inbox.append(envelope.content)
        return "250 OK"

    def start(self) -> "Stack":
        self.smtp.start()
        self.web = Gunicorn(
            self.tmp,
            workers=3,
            ENVIRONMENT="acceptance",
            LOG_DIR=str(self.log_dir),
            LOG_TO_STDOUT_ONLY="false",
            REDIS_URL=BROKER,
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(self.smtp.port),
        ).start()
        seeded = subprocess.run(
            [sys.executable, "-c", SEED], cwd=ROOT, env=single_process(self.web.env),
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        self.seed = json.loads(seeded.stdout.strip().splitlines()[-1])
        self.worker_out = open(self.tmp / "worker.out", "wb")  # noqa: SIM115 (closed in stop)
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
            cwd=ROOT, env=self.web.env, stdout=self.worker_out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        (self.tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 300ms, evaluation_interval: 300ms}\n"
            "scrape_configs:\n  - job_name: app\n"
            "    metrics_path: /api/monitoring/prometheus/\n"
            f"    static_configs: [{{targets: ['{self.web.base_url.removeprefix('http://')}']}}]\n"
        )
        self.monitor = subprocess.Popen(
            [sys.executable, "manage.py", "monitor", "run", "--config",
             str(self.tmp / "prometheus.yml")],
            cwd=ROOT, env={**single_process(self.web.env), "MONITOR_LISTEN": "127.0.0.1:0"},
            stdout=self.worker_out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        # Both start side by side; the stack is up once the worker is ready and the monitor
        # has scraped the app.
        wait_for(lambda: any("ready" in line["message"] for line in self.lines("app.log")))
        wait_for(lambda: any("is up" in line["message"] for line in self.lines("app.log")))
        return self

    def stop(self) -> None:
        for process in (getattr(self, "monitor", None), getattr(self, "worker", None)):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if getattr(self, "worker_out", None) is not None:
            self.worker_out.close()
        if getattr(self, "web", None) is not None:
            self.web.stop()
        self.smtp.stop()

    def lines(self, name: str) -> list[dict]:
        path = self.log_dir / name
        if not path.exists():
            return []
        # json.loads fails the test on any line that is not one JSON object.
        return [json.loads(line) for line in path.read_text().splitlines()]

    def text(self) -> str:
        return "".join(p.read_text() for p in sorted(self.log_dir.glob("*.log")))

    def api(self, method: str, path: str, request_id: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Token {self.seed['token']}", "X-Request-ID": request_id}
        return httpx.request(
            method, self.web.base_url + path, headers=headers, timeout=30, **kwargs
        )

    def metric(self, name: str, **labels: str) -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(self.web.scrape_text())
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


def free_port() -> int:
    # aiosmtpd's Controller connects to its own port once started, so it needs a real number.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_redis()
    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()
    stack = Stack(tmp_path_factory.mktemp("logging-stack"))
    try:
        yield stack.start()
    finally:
        stack.stop()
        broker.flushdb()


def test_order_and_declined_payment_leave_json_lines_with_one_request_id(stack):
    before = stack.metric("payment_errors_total", error_code="card_declined")
    order = stack.api(
        "POST", "/api/orders/", "req-accept-order",
        json={"items": [{"product": stack.seed["product_id"], "quantity": 1}]},
    )  # fmt: skip
    assert order.status_code == 201, order.text
    payment = stack.api(
        "POST", "/api/payments/", "req-accept-pay",
        json={"order": order.json()["id"], "card_number": DECLINED_CARD, "exp_month": 12,
              "exp_year": 2099, "cvc": "123"},
    )  # fmt: skip
    assert payment.status_code == 402, payment.text

    def task_lines() -> list[dict]:
        return [
            line
            for line in stack.lines("app.log")
            if line.get("task_name") == "shop.orders.tasks.order_confirmation_send"
        ]

    wait_for(lambda: any("succeeded" in line["message"] for line in task_lines()))
    assert stack.inbox, "the confirmation email did not arrive"

    app, access = stack.lines("app.log"), stack.lines("access.log")
    for line in app + access:
        assert REQUIRED <= set(line), line
        assert line["environment"] == "acceptance"
        assert line["timestamp"].endswith("Z")
    # Every process wrote JSON: gunicorn's master, its workers, the Celery worker, the monitor.
    loggers = {line["logger"] for line in app + access}
    assert {
        "gunicorn.error",
        "access",
        "payments",
        "celery.apps.worker",
        "monitoring.monitor.scrape",
    } <= loggers
    # The request that placed the order: its access line (a gunicorn worker) and the task's
    # lines (the Celery worker) carry the same request id.
    web = [line for line in access if line["request_id"] == "req-accept-order"]
    assert [(w["route"], w["status"], w["user_id"]) for w in web] == [
        ("/api/orders/", 201, stack.seed["user_id"])
    ]
    assert {line["request_id"] for line in task_lines()} == {"req-accept-order"}
    assert {line["user_id"] for line in task_lines()} == {stack.seed["user_id"]}
    # The declined payment: the specification's structured entry, and its counter.
    (failure,) = [line for line in app if line["logger"] == "payments"]
    assert failure["request_id"] == "req-accept-pay"
    assert failure["error_code"] == "card_declined"
    assert failure["user_id"] == stack.seed["user_id"]
    assert failure["order_id"] == order.json()["number"]
    # No secret anywhere: the card, the customer's API token, the monitor's bearer token (it
    # scrapes /api/monitoring/prometheus/ with `Authorization: Bearer ...` all along).
    scrapes = [line for line in access if line["route"] == "/api/monitoring/prometheus/"]
    assert scrapes and {line["status"] for line in scrapes} == {200}
    for secret in (DECLINED_CARD, stack.seed["token"], TOKEN):
        assert secret not in stack.text()
    assert stack.metric("payment_errors_total", error_code="card_declined") == before + 1


def test_database_error_and_unhandled_exception_move_the_counters(stack):
    """A real database failure (the categories table is gone, as after a botched migration)
    makes the categories endpoint raise: database_errors_total and log_errors_total move at the
    Prometheus endpoint, summed over the gunicorn workers that served the requests."""
    db_before = stack.metric("database_errors_total", kind="OperationalError")
    log_before = stack.metric("log_errors_total", logger="django.request")
    database = sqlite3.connect(stack.tmp / "db.sqlite3")
    database.execute("ALTER TABLE catalog_category RENAME TO catalog_category_away")
    database.commit()
    try:
        statuses = [
            httpx.get(
                stack.web.base_url + "/api/catalog/categories/",
                headers={"X-Request-ID": f"req-broken-{n}"},
                timeout=30,
            ).status_code
            for n in range(6)
        ]
    finally:
        database.execute("ALTER TABLE catalog_category_away RENAME TO catalog_category")
        database.commit()
        database.close()
    assert statuses == [500] * 6
    assert stack.metric("database_errors_total", kind="OperationalError") == db_before + 6
    assert stack.metric("log_errors_total", logger="django.request") == log_before + 6
    errors = [
        line
        for line in stack.lines("app.log")
        if line["logger"] == "django.request" and line["level"] == "ERROR"
    ]
    assert {line["request_id"] for line in errors} == {f"req-broken-{n}" for n in range(6)}
    assert all(line["exc_type"] == "django.db.utils.OperationalError" for line in errors)
    assert all("no such table" in line["exc_message"] for line in errors)
    assert all("Traceback" in line["exc_traceback"] for line in errors)
