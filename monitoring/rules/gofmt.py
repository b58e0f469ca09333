"""Go-compatible parsing and formatting, in one place: what Prometheus and promtool print.

Durations:
- ``parse_duration(text) -> seconds`` / ``parse_duration_ms(text) -> ms | None``: Prometheus'
  ``model.ParseDuration`` (``1h30m``, ``15s``, ``500ms``, ``1w``, ``1y``).
- ``format_go_duration(ms)``: ``model.Duration.String()`` (``1h30m``, ``1s500ms``, ``0s``).
- ``go_time_duration(ms)``: Go's ``time.Duration.String()`` (``1m0s``, ``1h2m3.5s``).
Times:
- ``rfc3339(t_ms)``: Go's RFC3339Nano as the API prints times; ``ZERO_TIME`` is Go's zero
  ``time.Time`` ("never"); ``rfc3339_or_zero(t_ms)`` prints None as it;
  ``parse_rfc3339_ms(text)`` reads one back (any offset, up to nanoseconds; zero time -> None).
Floats:
- ``format_value(v)``: ``strconv.FormatFloat(v, 'f', -1, 64)`` with ``+Inf``/``-Inf``/``NaN``
  (the API's sample values); ``format_values(values)`` for many at once.
- ``format_go_g(v)``: ``'g'``, how ``{{ $value }}`` prints in a template.
- ``format_go_e(v, letter="e")``: ``'e'``, how the API prints an alert's value (``9.5e+01``);
  promtool prints ``'E'``.
- ``go_float(text)``: ``strconv.ParseFloat`` (accepts ``+Inf``, ``NaN``…), ``ValueError`` if bad.
Go's fmt (templates' ``print``/``printf`` and ``{{ $value }}``):
- ``go_print(value)``: ``%v``; ``go_sprintf(fmt, *args)``: ``fmt.Sprintf``; ``go_type_name(v)``;
  ``format_go_g_prec(v, prec)``: ``%.<prec>g``.
Strings:
- ``LABEL_NAME_RE``: a valid label name (``model.LabelNameRE``).
- ``go_quote(text)``: Go's ``%q`` of a label value; ``labels_string(labels)``: Prometheus'
  ``labels.String()`` (``{a="b", c="d"}``), as promtool and query errors print label sets.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)


_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(text: str) -> float:
    text = str(text).strip()
    if text == "0":
        return 0.0
    m = _DURATION_RE.match(text)
    if not text or not m or not any(m.groups()):
        raise ValueError(f'not a valid duration string: "{text}"')
    return float(sum(int(g) * unit for g, unit in zip(m.groups(), _UNITS, strict=True) if g))


def parse_duration_ms(text: str) -> int | None:
    """A Prometheus duration (`1h30m`, `15s`, `500ms`) in milliseconds; None if malformed."""
    try:
        return round(parse_duration(text) * 1000)
    except ValueError:
        return None


def format_go_duration(ms: int) -> str:
    """Prometheus' model.Duration.String(): 1h30m, 5m, 1s500ms, 0s, 1w, 7d23h, 1y."""
    if ms == 0:
        return "0s"
    out = ""
    # Years and weeks only when they divide it exactly: "90d" reads better than "12w6d".
    for unit, size, exact in _DURATION_UNITS:
        if (not exact or ms % size == 0) and ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


_DURATION_UNITS = (
    ("y", 31_536_000_000, True),
    ("w", 604_800_000, True),
    ("d", 86_400_000, False),
    ("h", 3_600_000, False),
    ("m", 60_000, False),
    ("s", 1000, False),
    ("ms", 1, False),
)


def go_time_duration(ms: int) -> str:
    """Go time.Duration.String() of whole milliseconds: 0s, 500ms, 1m0s, 1h2m3.5s; promtool
    prints a rule's evaluation error time this way (ts.Sub(epoch)), not as model.Duration."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    text = f"{secs}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what Prometheus prints for "never"


def rfc3339(t_ms: int | None) -> str | None:
    """Go's RFC3339Nano, as Prometheus' API prints times: the fraction's trailing zeros
    dropped (``.123Z``, ``.1Z``, none for a whole second), not isoformat's ``.123000``."""
    if t_ms is None:
        return None
    seconds, ms = divmod(int(t_ms), 1000)
    return _second_text(seconds) + (f".{ms:03d}".rstrip("0") if ms else "") + "Z"


@functools.lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    # The times of a burst of alerts or samples share their seconds: strftime once each.
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


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
    if not math.isfinite(v):
        return _non_finite(v)
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


def _non_finite(v: float) -> str:
    return "NaN" if math.isnan(v) else "+Inf" if v > 0 else "-Inf"


def format_go_g(v: float) -> str:
    if not math.isfinite(v):
        return _non_finite(v)
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
    if not math.isfinite(v):
        return _non_finite(v)
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return f"{sign}0{letter}+00"
    digits, dp = _digits(v)
    exp = dp - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}{letter}{'-' if exp < 0 else '+'}{abs(exp):02d}"


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


_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\x7f]')


def go_quote(value: str) -> str:
    if not _NEEDS_ESCAPE.search(value):
        return f'"{value}"'  # the common case, without the walk below
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def rfc3339_or_zero(t_ms: int | None) -> str:
    """``rfc3339``, or Go's zero time where Prometheus prints "never" (a rule not yet
    evaluated, a target not yet scraped)."""
    return ZERO_TIME if t_ms is None else rfc3339(t_ms)


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)\Z")


def parse_rfc3339_ms(text: str) -> int | None:
    """Go's JSON time (RFC3339Nano, as Alertmanager and Prometheus send) as Unix milliseconds,
    truncated; Go's zero time as None. ValueError names what is wrong."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    whole, fraction, zone = match.groups()
    if whole == ZERO_TIME[:19]:
        return None
    at = datetime.fromisoformat(whole + ("+00:00" if zone in "Zz" else zone))
    return int(at.timestamp()) * 1000 + int((fraction or "0").ljust(3, "0")[:3])


def labels_string(labels: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    items = sorted(labels.items()) if isinstance(labels, Mapping) else labels
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in items) + "}"


# Go's fmt, as text/template prints values and printf formats them.


def go_print(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_go_g(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def format_go_g_prec(v: float, prec: int) -> str:
    if not math.isfinite(v):
        return _non_finite(v)
    return f"{v:.{prec}g}"  # Python's .Ng matches Go's %.Ng for finite values


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    out = []
    pos = 0
    argi = 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_one(flags, width, prec, verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{type(a).__name__}={go_print(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def go_type_name(arg: Any) -> str:
    named = getattr(arg, "go_type", None)  # a Go value of the notification templates
    if named:
        return named
    return {bool: "bool", int: "int", float: "float64", str: "string"}.get(type(arg), "map")


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    # As Go's fmt: a verb applies to each element of a slice, map or struct (no String()).
    stringer = "String" in getattr(arg, "go_methods", ())
    if not stringer and verb in "sdvqxXt" and not isinstance(arg, str):
        fields = getattr(arg, "go_field_order", None)
        one = lambda x: _format_one(flags, width, prec, verb, x)  # noqa: E731
        if isinstance(arg, dict):
            return "map[" + " ".join(f"{one(k)}:{one(v)}" for k, v in sorted(arg.items())) + "]"
        if isinstance(arg, list | tuple):
            return "[" + " ".join(one(x) for x in arg) + "]"
        if fields:
            return "{" + " ".join(one(getattr(arg, f)) for f in fields) + "}"
    return _format_scalar(flags, width, prec, verb, arg)


def _format_scalar(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
    stringer = "String" in getattr(arg, "go_methods", ())  # a Go value with String()
    if verb == "v" or (verb in "sq" and stringer) or (verb == "s" and isinstance(arg, str)):
        if verb == "q":
            return json.dumps(str(arg), ensure_ascii=False)
        text = go_print(arg)
        return (spec + "s") % text
    if verb == "q" and isinstance(arg, str):
        return json.dumps(arg, ensure_ascii=False)
    if verb == "t" and isinstance(arg, bool):
        return go_print(arg)
    if verb in "dxXob" and isinstance(arg, int) and not isinstance(arg, bool):
        return (spec + verb) % arg if verb != "b" else format(arg, "b")
    if verb in "eEfFgG" and isinstance(arg, float):
        if math.isnan(arg) or math.isinf(arg):
            return (spec.split(".")[0] + "s") % go_print(arg)
        if verb in "gG" and prec is None:
            return (spec + "s") % format_go_g(arg)
        return (spec + verb) % arg
    if verb in "xX" and isinstance(arg, str):
        return arg.encode().hex() if verb == "x" else arg.encode().hex().upper()
    return f"%!{verb}({go_type_name(arg)}={go_print(arg)})"
