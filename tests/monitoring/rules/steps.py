"""What a range query must equal: the instant query at every step."""

import struct

from monitoring.rules.engine import Engine
from monitoring.rules.values import Scalar


def bits(v: float) -> bytes:
    """A float's exact bits, so NaN payloads (staleness) and -0.0 compare too."""
    return struct.pack("<d", v)


def instant_at_every_step(engine: Engine, expr: str, start: int, end: int, step: int) -> dict:
    """{labels: [(t, bits(value)), ...]} from an instant query at each step."""
    expected: dict = {}
    for t in range(start, end + 1, step):
        value = engine.instant(expr, t)
        samples = (
            [((), value.value)]
            if isinstance(value, Scalar)
            else [(s.labels, s.value) for s in value.samples]
        )
        for labels, v in samples:
            expected.setdefault(labels, []).append((t, bits(v)))
    return expected
