"""The notify benchmark runs as `make bench` runs it and prints its figures (small sizes)."""

import os
import re

from tests.bench.runner import run_bench
from tests.services import require_alertmanager


def test_notify_bench_routes_groups_and_inhibits():
    require_alertmanager()
    out = run_bench(
        "bench/bench_notify.py", "--sizes", "200,2000", "--rounds", "2", env=dict(os.environ)
    )
    assert "| cycle: route + group keys + inhibition | ms |" in out
    # Both inhibition rules have work: critical twins of warnings and targets down.
    found = re.search(r"2000 alerts → (\d+) groups, (\d+) inhibited", out)
    assert found and int(found.group(1)) > 10 and int(found.group(2)) > 20, out
    # Beside a real Alertmanager, through both APIs, at both sizes.
    assert re.search(r"\| 200 alerts \| \d+ \| \d+ \| [\d.]+ \|", out), out
    assert re.search(r"\| 2000 alerts \| \d+ \| \d+ \| [\d.]+ \|", out), out


def test_latency_bench_measures_both_systems_at_each_size():
    require_alertmanager()
    out = run_bench(
        "bench/bench_notify_latency.py", "--sizes", "1,10", "--rounds", "1", env=dict(os.environ)
    )
    for size in ("1", "10"):
        for system in ("ours", "alertmanager"):
            assert re.search(rf"\| {size} \| {system} \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", out), out
    assert "ratio ours/alertmanager (median): 1: " in out
