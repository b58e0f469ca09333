"""Under real gunicorn with two workers, `maintenance_mode on` reaches every worker within a
couple of seconds (each stats the flag file at most once a second), `off` brings them back, and
the health endpoint answers 200 throughout."""

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.wait import wait_for

pytestmark = pytest.mark.slow

URL = "/api/catalog/products/"


def _worker(response: httpx.Response) -> str:
    # Request ids start with a prefix drawn anew in every forked process.
    return response.headers["X-Request-ID"][:12]


def _round(app: Gunicorn, pool: ThreadPoolExecutor) -> list[tuple[str, int, float]]:
    """A few concurrent requests on new connections, so both workers get some."""

    def get(_):
        response = httpx.get(app.base_url + URL, timeout=10, headers={"Connection": "close"})
        return _worker(response), response.status_code, time.monotonic()

    return list(pool.map(get, range(4)))


def _switch(app: Gunicorn, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "maintenance_mode", *args],
        cwd=ROOT, env=single_process(app.env), check=True, timeout=60, capture_output=True,
    )  # fmt: skip


def _every_worker_answers(app, pool, status: int, since: float) -> dict[str, float]:
    """Per worker, when it first answered `status` after `since`; waits until both have."""
    first: dict[str, float] = {}
    seen: set[str] = set()

    def all_switched():
        for worker, code, at in _round(app, pool):
            seen.add(worker)
            if code == status:
                first.setdefault(worker, at - since)
        return len(seen) == app.workers and set(first) == seen

    wait_for(all_switched, timeout=60, what=f"every worker answering {status}")
    return first


def test_every_worker_switches_within_a_couple_of_seconds_and_health_stays_up(tmp_path):
    health: list[int] = []
    stop = threading.Event()
    with Gunicorn(tmp_path, workers=2) as app, ThreadPoolExecutor(4) as pool:

        def probe():
            while not stop.is_set():
                health.append(httpx.get(app.base_url + "/api/health/", timeout=10).status_code)
                time.sleep(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            _every_worker_answers(app, pool, 200, time.monotonic())

            _switch(app, "on", "--retry-after", "42")
            on = _every_worker_answers(app, pool, 503, time.monotonic())
            response = httpx.get(app.base_url + URL, timeout=10)
            assert response.status_code == 503 and response.headers["Retry-After"] == "42"
            assert response.json()["code"] == "maintenance"
            assert "\nmaintenance_mode 1.0\n" in app.scrape_text()

            _switch(app, "off")
            off = _every_worker_answers(app, pool, 200, time.monotonic())
            assert "\nmaintenance_mode 0.0\n" in app.scrape_text()
        finally:
            stop.set()
            prober.join()
    # One second between stats, plus slack for a loaded machine.
    assert max(on.values()) < 5 and max(off.values()) < 5, (on, off)
    assert health and set(health) == {200}, health
