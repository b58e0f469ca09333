"""The outbox benchmark runs as `make bench` runs it and prints its figures (small sizes)."""

import os

import pytest

from tests.bench.runner import run_bench
from tests.redis_server import require_redis_server

pytestmark = pytest.mark.slow


def test_outbox_bench_compares_the_outbox_with_the_direct_delay():
    require_redis_server()
    out = run_bench(
        "bench/bench_outbox.py", "--orders", "10", "--rounds", "1", "--sizes", "10,100",
        env=dict(os.environ),
    )  # fmt: skip
    for size in (10, 100):
        for variant in ("direct .delay()", "outbox, relay inline", "outbox, request only"):
            assert f"| {size} | {variant} |" in out, out
    assert "ratio outbox (request only)/direct:" in out
