"""Acceptance: requests spread over 4 gunicorn workers are counted exactly, even when one dies."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicorn import Gunicorn

pytestmark = pytest.mark.slow

ROUTE = "/api/monitoring/prometheus/"


def sample_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def hit(base_url: str, count: int) -> None:
    """`count` unauthenticated requests (answered 401), eight at a time."""

    # One client: a new httpx client per request would spend its time building SSL contexts.
    # A generous timeout: four workers on two cores busy with the suite's other workers
    # took over 10 s to answer one of these.
    with httpx.Client(base_url=base_url, timeout=60) as client, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get(ROUTE).status_code, range(count)))
    assert statuses == [401] * count


def requests_counted(server: Gunicorn) -> float:
    return sample_sum(server.scrape_text(), "http_requests_total", route=ROUTE, status="401")


def workers_that_served(server: Gunicorn) -> int:
    """Workers whose metric files hold a request to the route (one counter file per pid)."""
    served = 0
    for path in (server.tmp / "metrics").glob("counter_*.db"):
        for key, value, _ in MmapedDict(str(path), read_mode=True).read_all_values():
            if '"http_requests_total"' in key and ROUTE in key and value > 0:
                served += 1
                break
    return served


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Gunicorn(tmp_path_factory.mktemp("gunicorn"), workers=4) as running:
        yield running


def test_requests_over_four_workers_are_counted_exactly(server):
    hit(server.base_url, 300)
    assert requests_counted(server) == 300
    assert workers_that_served(server) >= 2  # really spread, not one worker doing all

    victim = server.worker_pids()[0]
    # A live-only gauge file of the victim, as prometheus_client writes it: the master's
    # child_exit hook must remove it (counters of the victim must stay).
    live_gauge = server.tmp / "metrics" / f"gauge_livesum_{victim}.db"
    MmapedDict(str(live_gauge)).write_value(
        mmap_key("in_flight", "in_flight", [], [], "In flight."), 1.0, 0.0
    )
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while victim in server.worker_pids() or len(server.worker_pids()) < 4:
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.1)

    # The dead worker's requests are still counted, and the new worker's add up.
    assert requests_counted(server) == 300
    hit(server.base_url, 100)
    assert requests_counted(server) == 400
    assert not live_gauge.exists()
    assert (server.tmp / "metrics" / f"counter_{victim}.db").exists()


def test_latency_histogram_count_matches_requests(server):
    text = server.scrape_text()
    count = sample_sum(text, "http_request_duration_seconds_count", route=ROUTE)
    inf = sample_sum(text, "http_request_duration_seconds_bucket", route=ROUTE, le="+Inf")
    assert count == inf == sample_sum(text, "http_requests_total", route=ROUTE)


def test_process_metrics_cover_every_live_worker(server):
    def reported() -> set[str]:
        return {
            sample.labels["pid"]
            for family in text_string_to_metric_families(server.scrape_text())
            for sample in family.samples
            if sample.name == "process_resident_memory_bytes"
        }

    # A worker appears once it has booted the app (a respawned one may still be booting).
    deadline = time.monotonic() + 60
    while not {str(pid) for pid in server.worker_pids()} <= reported():
        assert time.monotonic() < deadline, (server.worker_pids(), reported())
        time.sleep(0.2)
