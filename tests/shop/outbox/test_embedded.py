"""`make up`'s default (SQLite, no Redis) under gunicorn: the relay thread of the web process
runs the confirmation in-process, once, without a broker."""

import subprocess
import sys
from email import message_from_bytes

import httpx
import pytest

from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.monitoring.notify.channels.servers import SmtpServer
from tests.wait import wait_for

pytestmark = [pytest.mark.slow]

SETUP = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from shop.catalog.models import Category, Product
category = Category.objects.create(name="Prints", slug="prints")
product = Product.objects.create(sku="EMB-1", name="Embedded", category=category, price="9.00",
                                 stock_quantity=10)
user = User.objects.create_user("emb", "emb@example.com", "pw-embedded-123")
print(product.pk, Token.objects.create(user=user).key)
"""


def test_without_redis_the_web_process_runs_the_job_in_process(tmp_path):
    smtp = SmtpServer()
    web = Gunicorn(
        tmp_path, workers=1, REDIS_URL="", OUTBOX_RELAY_THREAD="1", OUTBOX_POLL_SECONDS="0.5",
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp.port),
    )  # fmt: skip
    try:
        web.migrate()
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SETUP], cwd=ROOT,
            env=single_process(web.env), check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        product, token = out.stdout.split()[-2:]
        web.start()
        placed = httpx.post(
            f"{web.base_url}/api/orders/",
            json={"items": [{"product": int(product), "quantity": 1}]},
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        assert placed.status_code == 201, placed.text
        number = placed.json()["number"]
        wait_for(lambda: smtp.messages, 30, "the confirmation email")
        [(_, recipients, data)] = smtp.messages
        assert recipients == ["emb@example.com"]
        assert number in message_from_bytes(data)["Subject"]
    finally:
        web.stop()
        smtp.close()
