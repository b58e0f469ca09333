"""The notify benchmark runs as `make bench` runs it and prints its figures (small sizes)."""

import os
import re

from tests.bench.runner import run_bench


def test_notify_bench_routes_groups_and_inhibits():
    out = run_bench(
        "bench/bench_notify.py", "--alerts", "2000", "--rounds", "2", env=dict(os.environ)
    )
    assert "| cycle: route + group keys + inhibition | ms |" in out
    # Both inhibition rules have work: critical twins of warnings and targets down.
    found = re.search(r"2000 alerts → (\d+) groups, (\d+) inhibited", out)
    assert found and int(found.group(1)) > 10 and int(found.group(2)) > 20, out
