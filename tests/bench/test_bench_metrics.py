"""The metrics benchmarks run end to end and print their comparisons (small sizes)."""

import os

import pytest

from tests.bench.runner import run_bench as run
from tests.gunicorn import single_process

pytestmark = pytest.mark.slow


def run_bench(*args: str) -> str:
    return run(*args, env=single_process(dict(os.environ)))


def test_middleware_bench_compares_three_stacks():
    out = run_bench("bench/bench_middleware.py", "--requests", "30", "--rounds", "1")
    for row in ("| none |", "| ours |", "| django-prometheus |"):
        assert row in out
    assert "ratio ours/django-prometheus" in out


def test_exposition_bench_compares_readers_and_scrapes_gunicorn():
    out = run_bench(
        "bench/bench_exposition.py", "--rounds", "1", "--scrapes", "5", "--requests", "50"
    )
    assert "| prometheus_client |" in out and "| ours |" in out
    assert "ratio ours/prometheus_client" in out
    assert "Scrape of the real app, gunicorn with 4 workers" in out
