"""PromQL result values and their Prometheus HTTP API JSON, plus Go-compatible float formatting.

- ``Scalar(value)``, ``String(value)``, ``Sample(labels, value)``, ``Vector(samples)``,
  ``Series(labels, points)`` with ``points`` a list of ``(t_ms, value)``, ``Matrix(series)``.
- ``result_json_at(result, t_ms) -> dict``: ``{"resultType": ..., "result": ...}`` exactly as
  Prometheus' ``/api/v1/query`` ``data`` field (timestamps in float seconds, values as strings).
- ``result_json_text_at(result, t_ms) -> str``: the same, encoded as the API sends it.
- ``format_value(v)``: Go ``strconv.FormatFloat(v, 'f', -1, 64)`` with ``+Inf``/``-Inf``/``NaN``
  (the API's value strings); ``format_values(values)`` for many at once.
- ``format_go_g(v)``: Go ``strconv.FormatFloat(v, 'g', -1, 64)``, i.e. how ``{{ $value }}``
  prints in a template and how promtool prints values.
- ``go_float(text)``: Go ``strconv.ParseFloat`` (accepts ``+Inf``, ``NaN``…), ``ValueError`` if bad.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from monitoring.tsdb.store import Labels


@dataclass
class Scalar:
    value: float


@dataclass
class String:
    value: str


@dataclass(slots=True)
class Sample:
    labels: Labels
    value: float
    t_ms: int | None = None  # the sample's own timestamp, used by timestamp()


@dataclass
class Vector:
    samples: list[Sample] = field(default_factory=list)


@dataclass
class Series:
    labels: Labels
    points: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Matrix:
    series: list[Series] = field(default_factory=list)


Value = Scalar | String | Vector | Matrix


def _digits(v: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(v) and the decimal point position."""
    sign, digits, exp = Decimal(repr(abs(v))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    if text == "0":
        return "0", 1
    dp = len(digits) + exp
    # strip leading zeros (Decimal never has them except for zero itself)
    return text, dp


def format_value(v: float) -> str:
    text = repr(v)
    # Fast path: Python's repr is already the shortest round-trip form; without an exponent
    # (1e-4 <= |v| < 1e16) it only differs from Go's by the ".0" of whole numbers.
    if "e" not in text and "n" not in text:
        return text[:-2] if text.endswith(".0") else text
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = math.copysign(1.0, v) < 0
    digits, dp = _digits(v)
    if digits == "0":
        body = "0"
    elif dp <= 0:
        body = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        body = digits + "0" * (dp - len(digits))
    else:
        body = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + body


def format_values(values: Sequence[float]) -> list[str]:
    """``[format_value(v) for v in values]``, in bulk for a range query's points.

    One C-level ``repr`` per value and one ``replace`` over their join: without an exponent,
    NaN or Inf anywhere (no "e" or "n" in the text) Go's form is the repr less a final ".0"."""
    text = "\x00".join(map(repr, values))
    if "e" in text or "n" in text:
        return list(map(format_value, values))
    if not text:
        return []
    return (text + "\x00").replace(".0\x00", "\x00").split("\x00")[:-1]


def format_go_g(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = math.copysign(1.0, v) < 0
    digits, dp = _digits(v)
    sign = "-" if neg else ""
    if digits == "0":
        return sign + "0"
    exp = dp - 1
    # Go's shortest %g switches to an exponent below 1e-4 and from 1e6 up ("eprec = 6").
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + format_value(abs(v))


def format_go_e(v: float, letter: str = "e") -> str:
    """Go ``strconv.FormatFloat(v, 'e', -1, 64)`` (or ``'E'``): shortest round-trip digits, an
    exponent of at least two digits. The API's alert values use 'e'; promtool prints 'E'."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return f"{sign}0{letter}+00"
    digits, dp = _digits(v)
    exp = dp - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}{letter}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def format_go_duration(ms: int) -> str:
    """Prometheus' model.Duration.String(): 1h30m, 5m, 1s500ms, 0s, 1w, 1y."""
    if ms == 0:
        return "0s"
    out = ""
    units = (("y", 31536000000), ("w", 604800000), ("d", 86400000), ("h", 3600000))
    for unit, size in (*units, ("m", 60000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def go_float(text: str) -> float:
    t = text
    low = t.lower().lstrip("+-")
    if low in ("inf", "infinity"):
        return -math.inf if t.startswith("-") else math.inf
    if low == "nan":
        return math.nan
    if "_" in t or not t:
        raise ValueError(f"invalid float {text!r}")
    return float(t)


def _seconds(t_ms: int) -> int | float:
    # Prometheus writes whole seconds without a fraction (1435781451, 1435781451.781).
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def _point(t_ms: int, v: float) -> list:
    return [_seconds(t_ms), format_value(v)]


def _points(points: list[tuple[int, float]]) -> list[list]:
    # The bulk of a query_range answer: one list per step, kept to plain loops.
    fmt = format_value
    return [[t // 1000 if t % 1000 == 0 else t / 1000, fmt(v)] for t, v in points]


# The API's encoder settings (compact, no NaN): JSON numbers and label sets are written by it.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def result_json_text_at(result: Value, t_ms: int) -> str:
    """``result_json_at`` already encoded: the same text as encoding it with ``_ENCODER``
    (``json.dumps(..., separators=(",", ":"), allow_nan=False)``).

    A matrix is written directly: a query_range answer is nearly all points, and joining one
    string per point costs a fraction of building a list per point for the encoder."""
    if not isinstance(result, Matrix):
        return _ENCODER.encode(result_json_at(result, t_ms))
    heads: dict[int, str] = {}  # t_ms -> '[<seconds>,"', shared by the series of a range query
    parts = []
    for s in result.series:
        values = ""
        if s.points:
            ts, vs = zip(*s.points, strict=True)
            for t in set(ts).difference(heads):
                heads[t] = "[" + _ENCODER.encode(_seconds(t)) + ',"'
            values = '"],'.join(map(operator.add, map(heads.__getitem__, ts), format_values(vs)))
            values += '"]'
        parts.append('{"metric":' + _ENCODER.encode(dict(s.labels)) + ',"values":[' + values + "]}")
    return '{"resultType":"matrix","result":[' + ",".join(parts) + "]}"


def result_json_at(result: Value, t_ms: int) -> dict:
    """The ``data`` object of ``/api/v1/query`` (instant) or ``/api/v1/query_range``."""
    if isinstance(result, Scalar):
        return {"resultType": "scalar", "result": _point(t_ms, result.value)}
    if isinstance(result, String):
        return {"resultType": "string", "result": [_seconds(t_ms), result.value]}
    if isinstance(result, Vector):
        return {
            "resultType": "vector",
            "result": [
                {"metric": dict(s.labels), "value": _point(t_ms, s.value)} for s in result.samples
            ],
        }
    return {
        "resultType": "matrix",
        "result": [{"metric": dict(s.labels), "values": _points(s.points)} for s in result.series],
    }
