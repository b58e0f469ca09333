"""The monitor benchmark runs end to end and prints its figures (small sizes)."""

import os
import subprocess
import sys

import pytest

from tests.gunicorn import ROOT

pytestmark = pytest.mark.slow


def test_monitor_bench_measures_scrape_and_query_range(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/bench_monitor.py", "--series", "500", "--rounds", "1"],
        cwd=ROOT,
        env={**os.environ, "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a goal missed, still a report
    out = result.stdout
    assert "| our scrape: HTTP + parse + labels + store |" in out
    assert "| through the monitor's HTTP API (JSON), client in its own process |" in out
    assert "query_range via API" in out
