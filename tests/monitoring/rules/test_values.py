"""Value strings of the HTTP API: Go's strconv.FormatFloat(v, 'f', -1, 64), as Prometheus writes."""

import json
import math
import random

import pytest

from monitoring.rules.values import (
    Matrix,
    Sample,
    Scalar,
    Series,
    String,
    Vector,
    format_go_duration,
    format_go_e,
    format_value,
    format_values,
    result_json_at,
    result_json_text_at,
)
from monitoring.tsdb.store import labels_from

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


SPECIAL = [0.0, -0.0, 1.0, -3.0, 0.5, 1e-05, 1.5e-7, 1e16, 1.2345e21, math.inf, -math.inf, math.nan]


def test_format_values_is_format_value_of_each():
    rng = random.Random(11)
    for _ in range(300):
        values = [
            rng.choice(
                [
                    rng.choice(SPECIAL),
                    float(rng.randint(-1000, 1000)),
                    rng.uniform(-1, 1) * 10 ** rng.randint(-8, 20),
                ]
            )
            for _ in range(rng.randint(0, 30))
        ]
        assert format_values(values) == [format_value(v) for v in values]


def test_result_json_text_is_the_encoded_result_json():
    # query_range's answer is written as text directly; it must be what json.dumps writes.
    rng = random.Random(5)

    def encoded(result, t_ms):
        return json.dumps(result_json_at(result, t_ms), separators=(",", ":"), allow_nan=False)

    for _ in range(50):
        series = []
        for i in range(rng.randint(0, 4)):
            labels = labels_from(
                {"__name__": "x", "i": str(i), "odd": rng.choice(['"\\\n', "é", "ok"])}
            )
            t = rng.choice([0, 1_700_000_000_000, -5_000]) + rng.randint(0, 999) * rng.randint(0, 1)
            points = []
            for _ in range(rng.randint(0, 20)):
                points.append((t, rng.choice([rng.choice(SPECIAL), rng.uniform(-1e6, 1e6)])))
                t += rng.choice([1000, 15_000, 1, 333])
            series.append(Series(labels, points))
        matrix = Matrix(series)
        assert result_json_text_at(matrix, 0) == encoded(matrix, 0)
    vector = Vector([Sample(labels_from({"a": "b"}), 0.1)])
    for result in (vector, Scalar(math.nan), String("s")):
        assert result_json_text_at(result, 1500) == encoded(result, 1500)


def test_format_go_e_as_go_prints_alert_values_and_promtool_samples():
    cases = [(10, "1e+01"), (0.5, "5e-01"), (1 / 3, "3.333333333333333e-01"), (1e21, "1e+21")]
    assert [format_go_e(v) for v, _ in cases] == [text for _, text in cases]
    assert [format_go_e(v, "E") for v in (0.0, -0.0, -1234.5)] == ["0E+00", "-0E+00", "-1.2345E+03"]
    assert [format_go_e(v) for v in (math.inf, math.nan)] == ["+Inf", "NaN"]


def test_format_go_duration_as_prometheus_model_duration():
    ms = [0, 1500, 30_000, 90_000, 3_600_000, 86_400_000, 604_800_000 + 5_000, 31_536_000_000]
    assert [format_go_duration(m) for m in ms] == [
        "0s", "1s500ms", "30s", "1m30s", "1h", "1d", "1w5s", "1y",
    ]  # fmt: skip
