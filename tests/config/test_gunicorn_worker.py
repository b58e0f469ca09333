"""The public health probe answers while every request thread of the worker is busy.

One gunicorn worker with one request thread; a request that waits on the database (the test
holds SQLite's exclusive lock) takes that thread. Probes still answer at once: they have
threads of their own (config/gunicorn_worker.py)."""

import sqlite3
import threading
import time

import httpx
import pytest

from tests.gunicorn import Gunicorn

pytestmark = pytest.mark.slow

HOLD = 3.0


def test_health_does_not_queue_behind_a_request_holding_the_only_thread(tmp_path):
    with Gunicorn(tmp_path, workers=1, GUNICORN_THREADS="1") as web:
        httpx.get(f"{web.base_url}/api/health/", timeout=10).raise_for_status()
        lock = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        slow: dict = {}

        def browse() -> None:
            started = time.monotonic()
            slow["status"] = httpx.get(f"{web.base_url}/api/catalog/products/", timeout=60)
            slow["seconds"] = time.monotonic() - started

        browsing = threading.Thread(target=browse)
        browsing.start()
        took = []
        deadline = time.monotonic() + HOLD
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline:
                started = time.monotonic()
                assert client.get(f"{web.base_url}/api/health/").status_code == 200
                took.append(time.monotonic() - started)
                time.sleep(0.05)
        lock.execute("ROLLBACK")
        lock.close()
        browsing.join(timeout=60)
    # The slow request held the only request thread the whole time the probes ran.
    assert slow["status"].status_code == 200 and slow["seconds"] >= HOLD - 0.5
    assert len(took) >= 10 and max(took) < 0.5, took
