"""The monitor benchmark runs end to end and prints its figures (small sizes)."""

import os

import pytest

from tests.bench.runner import run_bench

pytestmark = pytest.mark.slow


def test_monitor_bench_measures_scrape_and_query_range(tmp_path):
    out = run_bench(
        "bench/bench_monitor.py", "--series", "500", "--rounds", "1",
        env={**os.environ, "VAR_DIR": str(tmp_path)},
    )  # fmt: skip
    assert "| our scrape: HTTP + parse + labels + store |" in out
    assert "| through the monitor's HTTP API (JSON), client in its own process |" in out
    assert "query_range via API" in out
    assert "| a small answer (one sample) through the API |" in out
