"""Go-compatible formatting: values, durations and times as Prometheus and promtool print them."""

import math
import random

import pytest

from monitoring.rules.gofmt import (
    format_go_duration,
    format_go_e,
    format_value,
    format_values,
    go_time_duration,
    parse_duration,
    parse_rfc3339_ms,
    rfc3339,
    rfc3339_or_zero,
)

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


def test_format_go_e_as_go_prints_alert_values_and_promtool_samples():
    cases = [(10, "1e+01"), (0.5, "5e-01"), (1 / 3, "3.333333333333333e-01"), (1e21, "1e+21")]
    assert [format_go_e(v) for v, _ in cases] == [text for _, text in cases]
    assert [format_go_e(v, "E") for v in (0.0, -0.0, -1234.5)] == ["0E+00", "-0E+00", "-1.2345E+03"]
    assert [format_go_e(v) for v in (math.inf, math.nan)] == ["+Inf", "NaN"]


def test_format_go_duration_as_prometheus_model_duration():
    """Years and weeks only when nothing is left over ("90d", not "12w6d"): the last five as
    promtool 2.42 prints eval times 191h, 14d, 8761h, 8760h and 8928h in a failed rule test."""
    h = 3_600_000
    ms = [0, 1500, 30_000, 90_000, h, 24 * h, 7 * 24 * h + 5_000, 365 * 24 * h]
    ms += [191 * h, 14 * 24 * h, 8761 * h, 8760 * h, 8928 * h]
    assert [format_go_duration(m) for m in ms] == [
        "0s", "1s500ms", "30s", "1m30s", "1h", "1d", "7d5s", "1y",
        "7d23h", "2w", "365d1h", "1y", "372d",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("t_ms", "text"),
    [
        (1_700_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
        (1_700_000_000_100, "2023-11-14T22:13:20.1Z"),
        (1_700_000_000_020, "2023-11-14T22:13:20.02Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_times_print_as_go_rfc3339nano(t_ms, text):
    # activeAt and lastEvaluation: Go trims the fraction's trailing zeros (not ".123000").
    assert rfc3339(t_ms) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (95, "9.5e+01"),
        (1, "1e+00"),
        (0.000012, "1.2e-05"),
        (-3.25, "-3.25e+00"),
        (0, "0e+00"),
        (1e21, "1e+21"),
    ],
)
def test_alert_values_print_like_go(value, text):
    assert format_go_e(value) == text


def test_never_prints_as_go_zero_time():
    assert rfc3339_or_zero(None) == "0001-01-01T00:00:00Z"
    assert rfc3339_or_zero(1_700_000_000_120) == "2023-11-14T22:13:20.12Z"


def test_durations_parse_and_print_as_prometheus_and_go():
    assert [parse_duration(t) for t in ("1h30m", "90s", "250ms", "0", "1w", "1y")] == [
        5400, 90, 0.25, 0, 604800, 31536000,
    ]  # fmt: skip
    assert [go_time_duration(ms) for ms in (0, 500, 60_000, 3_723_500, -1500)] == [
        "0s", "500ms", "1m0s", "1h2m3.5s", "-1.5s",
    ]  # fmt: skip


def test_parse_rfc3339_ms_reads_what_go_writes():
    assert parse_rfc3339_ms("2026-12-04T22:00:00Z") == 1_796_421_600_000
    assert parse_rfc3339_ms("2026-12-04T22:00:00.123456789Z") == 1_796_421_600_123
    assert parse_rfc3339_ms("2026-12-04T23:00:00.5+01:00") == 1_796_421_600_500
    assert parse_rfc3339_ms("0001-01-01T00:00:00Z") is None
    for t_ms in (0, 1, 1_796_421_600_010, 1_796_421_600_999):
        assert parse_rfc3339_ms(rfc3339(t_ms)) == t_ms
    for bad in ("2026-12-04", "2026-12-04T22:00:00", "2026-12-04T22:00:00.Z", 5):
        with pytest.raises(ValueError):
            parse_rfc3339_ms(bad)
