"""Value strings of the HTTP API: Go's strconv.FormatFloat(v, 'f', -1, 64), as Prometheus writes."""

import math
import random

import pytest

from monitoring.rules.values import format_value

# (value, what Go prints): whole numbers lose ".0", no exponent at either end, shortest digits.
GO_F = [
    (1.0, "1"),
    (0.0, "0"),
    (-0.0, "-0"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),
    (1e-05, "0.00001"),
    (1.5e-07, "0.00000015"),
    (123456789.123, "123456789.123"),
    (1e16, "10000000000000000"),
    (1.2345e21, "1234500000000000000000"),
    (-2.5e-5, "-0.000025"),
    (99.99999999999999, "99.99999999999999"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
    (math.nan, "NaN"),
]


@pytest.mark.parametrize(("value", "expected"), GO_F)
def test_format_value_matches_go(value, expected):
    assert format_value(value) == expected


def test_format_value_round_trips_without_exponent():
    rng = random.Random(7)
    for _ in range(5000):
        v = rng.uniform(-1, 1) * 10 ** rng.randint(-12, 22)
        text = format_value(v)
        assert "e" not in text and not text.endswith(".0"), text
        assert float(text) == v
