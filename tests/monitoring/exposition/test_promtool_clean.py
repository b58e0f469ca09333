"""The real scrape passes `promtool check metrics` without a word: one family per name (issue 9,
defect 6: `monitoring_collector_up` came twice), no lint; and the counters whose label values
are known in advance are there at 0 in a fresh app, before any event (defect 7)."""

import logging
import os
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicorn import ROOT, TOKEN, Gunicorn, app_env, single_process
from tests.services import require_prometheus, require_redis

# Shares Redis database 9 with other modules: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("redis-db-9")

URL = "/api/monitoring/prometheus/"

# Series a fresh app must show at 0: the log-alert expressions of the specification
# (increase(log_errors_total[5m]), increase(payment_errors_total[5m]), ...) and the payment
# failure rate need them before the first error.
AT_ZERO = [
    ("log_errors_total", {"logger": "payments"}),
    ("log_errors_total", {"logger": "django.request"}),
    ("payment_errors_total", {"error_code": "card_declined"}),
    ("payment_errors_total", {"error_code": "expired_card"}),
    ("database_errors_total", {"kind": "OperationalError"}),
    ("log_records_total", {"level": "CRITICAL"}),
    ("payments_failed_total", {"provider": "sandbox", "error_code": "card_declined"}),
    ("payments_succeeded_total", {"provider": "sandbox"}),
    ("monitoring_collector_errors_total", {"collector": "DatabaseCollector"}),
]


def promtool_check(body: str) -> None:
    require_prometheus()
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not said, f"promtool check metrics: {said}"


def value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.mark.prometheus
@pytest.mark.django_db
def test_in_process_scrape_is_clean(client, settings):
    settings.MONITORING_TOKEN = TOKEN
    client.get("/api/nowhere/")  # a 404
    client.get(URL)  # a 401
    logging.getLogger("payments").error("declined", extra={"error_code": "card_declined"})
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("# HELP monitoring_collector_up ") == 1
    promtool_check(body)


@pytest.mark.slow
def test_a_fresh_process_has_known_counters_at_zero(tmp_path):
    """In-process (no PROMETHEUS_MULTIPROC_DIR): a new process that has handled nothing."""
    env = single_process(app_env(tmp_path))
    code = "import django; django.setup(); from monitoring.metrics import exposition;"
    code += " import sys; sys.stdout.write(exposition().decode())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for name, labels in AT_ZERO:
        assert value(result.stdout, name, labels) == 0, (name, labels)


@pytest.fixture(scope="module")
def gunicorn_with_redis(tmp_path_factory):
    """Three workers sharing metric files, with Redis and Celery collectors on (db 9)."""
    require_redis()
    tmp = tmp_path_factory.mktemp("promtool")
    with Gunicorn(tmp, workers=3, REDIS_URL="redis://127.0.0.1:6379/9") as server:
        yield server


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.prometheus
def test_scrape_under_gunicorn_is_clean_and_starts_known_counters_at_zero(gunicorn_with_redis):
    server = gunicorn_with_redis
    fresh = server.scrape_text()
    for name, labels in AT_ZERO:
        assert value(fresh, name, labels) == 0, (name, labels)
    assert value(fresh, "database_up", {"database": "default"}) == 1
    assert value(fresh, "redis_up", {}) == 1
    assert value(fresh, "system_cpu_cores", {}) == os.cpu_count()

    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for _ in range(20):  # spread over the workers: 401s, 404s, health
            assert http.get(URL).status_code == 401
            assert http.get("/api/nowhere/").status_code == 404
            assert http.get("/api/health/").status_code == 200
    body = server.scrape_text()
    assert "process_resident_memory_bytes" in body  # the multiprocess families are there too
    promtool_check(body)
