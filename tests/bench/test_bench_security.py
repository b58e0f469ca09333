"""The security middleware benchmark runs end to end and prints its comparison (small sizes)."""

import os

import pytest

from tests.bench.runner import run_bench
from tests.gunicorn import single_process

pytestmark = pytest.mark.slow


def test_security_middleware_bench_compares_the_stacks_at_two_sizes():
    out = run_bench(
        "bench/bench_security_middleware.py", "--requests", "30", "--rounds", "1",
        env=single_process(dict(os.environ)),
    )  # fmt: skip
    for section in ("100 client addresses", "1000 client addresses"):
        assert section in out
    for row in ("| none |", "| ours |", "| django-prometheus |"):
        assert out.count(row) == 2
    assert out.count("ratio ours/django-prometheus") == 2
