"""A real Celery worker (Redis broker, PostgreSQL) runs the tasks the API enqueues.

The order confirmation email must arrive at a real SMTP server started here, and the
payment must be captured by the worker's capture task.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import kombu.pools
import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app as celery_app
from shop.catalog.models import Category, Product
from shop.payments.models import Payment
from tests.services import require_redis

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

BROKER = "redis://127.0.0.1:6379/1"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def smtp_inbox():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def _reset_producer_pools() -> None:
    # Kombu caches broker connections and producers per URL (even eager tasks take a
    # producer): close and forget them all whenever the broker URL changes.
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_broker():
    """This process enqueues to Redis (db 1) instead of running tasks eagerly."""
    require_redis()
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url=BROKER)
    _reset_producer_pools()
    yield client
    celery_app.conf.update(saved)
    _reset_producer_pools()
    client.flushdb()


@pytest.fixture
def worker(redis_broker, smtp_inbox, tmp_path):
    _, smtp_port = smtp_inbox
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": BROKER,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "VAR_DIR": str(tmp_path),
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process, tmp_path / "worker.log"
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_worker_sends_confirmation_email_and_captures_payment(worker, smtp_inbox):
    process, log_path = worker
    inbox, _ = smtp_inbox
    user = User.objects.create_user("shirin", "shirin@example.com", "pw-123-secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    category = Category.objects.create(name="Canvas", slug="canvas")
    product = Product.objects.create(
        sku="CNV-30x40",
        name="Canvas 30x40",
        category=category,
        price=Decimal("45.00"),
        stock_quantity=50,
    )

    placed = client.post(
        "/api/orders/", {"items": [{"product": product.pk, "quantity": 2}]}, format="json"
    )
    assert placed.status_code == 201
    number = placed.json()["number"]
    paid = client.post(
        "/api/payments/",
        {
            "order": placed.json()["id"],
            "card_number": "4242424242424242",
            "exp_month": 12,
            "exp_year": 2099,
            "cvc": "123",
        },
        format="json",
    )
    assert paid.status_code == 201

    def worker_log() -> str:
        return log_path.read_text()

    arrived = inbox.arrived.wait(timeout=45)
    assert arrived, f"no email arrived; worker exit={process.poll()}\n{worker_log()}"
    [(recipients, content)] = inbox.messages
    assert recipients == ["shirin@example.com"]
    assert number in content and "90.00" in content
    payment = Payment.objects.get()
    captured = wait_for(lambda: Payment.objects.filter(captured_at__isnull=False).exists())
    assert captured, f"payment {payment.pk} not captured\n{worker_log()}"
    assert "order_confirmation_send" in worker_log()
    assert "payment_capture_task" in worker_log()
