"""Range queries take shortcuts (series-major loops, numpy for rate/increase/delta); on messy
random data every value must be bit for bit what the step-by-step path (an instant query at
each step) gives: counter resets, staleness markers, ordinary NaN, infinities, gaps, uneven
sample spacing, offsets, steps not aligned to the samples."""

import math
import random

import pytest

from monitoring.rules import functions
from monitoring.rules.engine import _STEP_FUNCS, Engine
from monitoring.tsdb.store import STALE_NAN, SampleStore, labels_from
from tests.monitoring.rules.steps import bits, instant_at_every_step

MIN = 60_000
EPOCH = 1_700_000_000_000


def _random_store(seed: int, t0: int) -> SampleStore:
    rng = random.Random(seed)
    store = SampleStore()
    for i in range(10):
        counter = labels_from({"__name__": "c_total", "i": str(i)})
        gauge = labels_from({"__name__": "g", "i": str(i)})
        t = t0 + rng.randrange(0, MIN)
        c = rng.choice([0.0, 3.0, rng.uniform(0, 1e6)])
        while t < t0 + 40 * MIN:
            r = rng.random()
            if r < 0.04:
                store.append(counter, t, STALE_NAN)
                store.append(gauge, t, STALE_NAN)
            elif r < 0.06 and i % 4 == 3:  # ordinary NaN, in some series only
                store.append(counter, t, math.nan)
                store.append(gauge, t, math.nan)
            else:
                if rng.random() < 0.06:
                    c = rng.choice([0.0, rng.uniform(0, c)])  # a counter reset
                else:
                    c += rng.choice([0, 1, rng.uniform(0, 100), rng.randint(0, 10)])
                store.append(counter, t, c)
                g = rng.choice([rng.uniform(-100, 100), float(rng.randint(-3, 3))])
                if i == 5 and rng.random() < 0.05:
                    g = rng.choice([math.inf, -math.inf])
                store.append(gauge, t, g)
            t += rng.choice([15_000, 15_000, 10_000, 30_000, 1, 7_001, rng.randrange(1, 45_000)])
            if rng.random() < 0.03:
                t += rng.randrange(8 * MIN)  # a gap, often longer than the lookback
    # A target that restarts: its counter starts over after a staleness marker, a drop the
    # store's per-series bookkeeping (last_drop) does not see.
    restarted = labels_from({"__name__": "c_total", "i": "restarted"})
    for k in range(40 * 4):
        t = t0 + k * 15_000
        store.append(restarted, t, STALE_NAN if k % 40 == 39 else float((k % 40) * 7))
    return store


EXPRESSIONS = [
    f"{name}({metric}[{window}]{offset})"
    for name in sorted(_STEP_FUNCS)
    for metric in ("c_total", "g")
    for window, offset in (("1m", ""), ("5m", ""), ("137s", " offset 2m"))
] + ["c_total", "g offset 90s"]


@pytest.mark.parametrize(
    ("seed", "t0"), [(1, 0), (2, EPOCH), (3, 2**52)], ids=["zero", "epoch", "past-exact-floats"]
)
def test_range_paths_agree_bit_for_bit_with_the_step_by_step_path(seed, t0, monkeypatch):
    fast_series = []

    def counting(*args):
        points = fast(*args)
        fast_series.append(points is not None)
        return points

    fast = functions.extrapolated_steps
    monkeypatch.setattr(functions, "extrapolated_steps", counting)
    engine = Engine(_random_store(seed, t0))
    for expr in EXPRESSIONS:
        for start, end, step in (
            (t0 + 3 * MIN + 123, t0 + 38 * MIN, 17_000),
            (t0, t0 + 45 * MIN, MIN),
        ):
            matrix = engine.range(expr, start, end, step)
            got = {s.labels: [(t, bits(v)) for t, v in s.points] for s in matrix.series}
            assert got == instant_at_every_step(engine, expr, start, end, step), expr
    if t0 < 2**51:
        # numpy took most series, the step loop those holding an ordinary NaN
        assert fast_series.count(True) > 100 and fast_series.count(False) > 10
    else:
        assert fast_series == []  # times past 2**51 ms: the step loop, floats may round
