"""OpenTelemetry: a local OTLP/HTTP receiver gets one trace for one order placement, whose
spans cover the view, its SQL, the Redis commands, and the Celery task in the worker; the trace
id is on the request's log lines (and the worker's).

The shop runs under gunicorn (tracing set up in the worker, after the fork) with the outbox's
relay thread (the job carries the request's trace to the publish), the task in a real Celery
worker on Redis db 15: as deployed. On PostgreSQL (psycopg's instrumentation); a second test
checks the embedded default, SQLite without Redis (tasks run in-process).
"""

import json
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from shop.catalog.models import Category, Product
from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.monitoring.apm.conftest import BROKER
from tests.monitoring.apm.receivers import OtlpReceiver
from tests.shop.test_celery_worker import free_port

# Shares Redis database 15 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-15")

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # opentelemetry.proto.trace.v1.Span.SpanKind


def tracing_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_TRACES_SAMPLER_ARG": "1",  # every trace: the test follows one
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms between batches
        "OTEL_SERVICE_NAME": "shop-under-test",
    }


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@pytest.fixture
def smtp_port():
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port
    controller.stop()


def place_order(base_url: str, token: str, product_id: int) -> httpx.Response:
    response = httpx.post(
        f"{base_url}/api/orders/",
        json={"items": [{"product": product_id, "quantity": 2}]},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response


def order_trace(receiver: OtlpReceiver) -> str | None:
    for span in receiver.spans:
        if span["kind"] == SERVER and span["attributes"].get("http.route") == "api/orders/":
            return span["trace_id"]
    return None


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def assert_one_tree(spans: list[dict]) -> dict:
    """The spans form one tree under the request's server span; that span."""
    ids = {span["span_id"] for span in spans}
    [root] = [span for span in spans if span["parent_span_id"] not in ids]
    assert root["kind"] == SERVER and root["parent_span_id"] == ""
    return root


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_order_placement_is_one_trace_from_the_view_to_the_celery_task(
    tmp_path, start_worker, smtp_port
):
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    user = User.objects.create_user("darya", "darya@example.com", "pw-123-secret")
    token = Token.objects.create(user=user).key
    category = Category.objects.create(name="Canvas", slug="canvas")
    product = Product.objects.create(
        sku="CNV-30x40", name="Canvas 30x40", category=category,
        price=Decimal("45.00"), stock_quantity=50,
    )  # fmt: skip

    with OtlpReceiver() as receiver:
        env = {
            **tracing_env(receiver),
            "DATABASE_URL": database_url,
            "REDIS_URL": BROKER,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
        }
        worker = start_worker(env, queues=["celery"])
        with Gunicorn(tmp_path, workers=1, OUTBOX_RELAY_THREAD="true", **env) as shop:
            response = place_order(shop.base_url, token, product.pk)
            request_id = response.headers["X-Request-ID"]
            trace_id = receiver.wait_for(lambda: order_trace(receiver))
            assert trace_id, f"no order trace; spans: {[s['name'] for s in receiver.spans]}"

            def whole_trace():
                spans = [s for s in receiver.spans if s["trace_id"] == trace_id]
                sql_pids = {
                    s["resource"]["process.pid"] for s in spans if s["scope"].endswith("psycopg")
                }  # the web worker's and the Celery worker's
                # Each process exports on its own schedule: the web worker's publish span can
                # arrive after the Celery worker's spans of the task it published.
                kinds = {s["kind"] for s in spans}
                done = {PRODUCER, CONSUMER} <= kinds and len(sql_pids) == 2
                return spans if done and "outbox job done" in worker.log() else None

            spans = receiver.wait_for(whole_trace, timeout=60)
            assert spans, f"trace incomplete:\n{worker.log()}"
            gunicorn_log = (tmp_path / "gunicorn.log").read_text()

    scopes = {span["scope"].rsplit(".", 1)[-1] for span in spans}
    assert {"django", "psycopg", "redis", "celery"} <= scopes, scopes
    sql = [s for s in spans if s["scope"].endswith("psycopg")]
    assert any('INSERT INTO "orders_order"' in s["attributes"]["db.statement"] for s in sql)
    assert {s["attributes"].get("db.system") for s in sql} == {"postgresql"}
    [publish] = [s for s in spans if s["kind"] == PRODUCER]
    [run] = [s for s in spans if s["kind"] == CONSUMER]
    assert "order_confirmation_send" in publish["name"] and "order_confirmation_send" in run["name"]
    assert run["parent_span_id"] == publish["span_id"]
    # The task ran in the worker, its queries are in the trace too.
    pids = {s["resource"]["process.pid"] for s in spans}
    assert len(pids) == 2
    root = assert_one_tree(spans)
    assert root["attributes"]["http.route"] == "api/orders/"
    assert {s["resource"]["service.name"] for s in spans} == {"shop-under-test"}

    # The request's lines (its access line included) and the task's lines name the trace.
    request_lines = [e for e in log_lines(gunicorn_log) if e.get("request_id") == request_id]
    assert any(e["logger"] == "access" for e in request_lines)
    assert request_lines and all(e["trace_id"] == trace_id for e in request_lines)
    task_lines = [e for e in log_lines(worker.log()) if e.get("message") == "outbox job done"]
    assert task_lines and task_lines[-1]["trace_id"] == trace_id
    assert task_lines[-1]["request_id"] == request_id


def _shop_data(env: dict[str, str]) -> dict:
    """A customer with a token and a product in the shop's own (file) database."""
    script = (
        "import json; from decimal import Decimal;"
        "from django.contrib.auth.models import User;"
        "from rest_framework.authtoken.models import Token;"
        "from shop.catalog.models import Category, Product;"
        "u = User.objects.create_user('darya', 'darya@example.com', 'pw-123-secret');"
        "c = Category.objects.create(name='Canvas', slug='canvas');"
        "p = Product.objects.create(sku='CNV-1', name='Canvas', category=c,"
        " price=Decimal('45.00'), stock_quantity=50);"
        "print(json.dumps({'token': Token.objects.create(user=u).key, 'product': p.pk}))"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT, env=single_process(env), check=True, timeout=120, capture_output=True,
        text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_on_the_embedded_default_sqlite_spans_and_the_in_process_task_share_the_trace(
    tmp_path, smtp_port
):
    with OtlpReceiver() as receiver:
        shop = Gunicorn(
            tmp_path, workers=1, OUTBOX_RELAY_THREAD="true", EMAIL_PORT=str(smtp_port),
            **tracing_env(receiver),
        )  # fmt: skip
        shop.migrate()
        data = _shop_data(shop.env)
        with shop:
            response = place_order(shop.base_url, data["token"], data["product"])
            request_id = response.headers["X-Request-ID"]
            trace_id = receiver.wait_for(lambda: order_trace(receiver))
            assert trace_id, (
                [s["name"] for s in receiver.spans],
                (tmp_path / "gunicorn.log").read_text()[-2500:],
            )

            def confirmation_sent():  # the relay thread's run of the job, in the same trace
                spans = [s for s in receiver.spans if s["trace_id"] == trace_id]
                statements = " ".join(s["attributes"].get("db.statement", "") for s in spans)
                return spans if "outbox_job" in statements and "finished_at" in statements else None

            spans = receiver.wait_for(confirmation_sent, timeout=30)
            gunicorn_log = (tmp_path / "gunicorn.log").read_text()
            assert spans, f"no relayed job in the trace:\n{gunicorn_log[-3000:]}"

    sql = [s for s in spans if s["scope"].endswith("sqlite3")]
    assert sql and {s["attributes"].get("db.system") for s in sql} == {"sqlite"}
    assert_one_tree(spans)
    request_lines = [e for e in log_lines(gunicorn_log) if e.get("request_id") == request_id]
    access = [e for e in request_lines if e["logger"] == "access"]
    assert access and access[0]["trace_id"] == trace_id and len(access[0]["span_id"]) == 16
