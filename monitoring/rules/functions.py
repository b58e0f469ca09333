"""PromQL functions (Prometheus' ``functions.go``): the element-wise functions, date
functions, ``label_replace``/``label_join``, ``absent``'s labels, and the range-vector
functions over a ``Window`` of one series' samples (``range_func``), including the
extrapolated ``rate``/``increase``/``delta`` at one step (``extrapolated_at``) or at every
step of a range query at once (``extrapolated_steps``, numpy, bit-identical).
The engine evaluates the arguments and calls these; they never read the store."""

from __future__ import annotations

import calendar
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import numpy as np

from monitoring.rules import gomath
from monitoring.rules.aggregations import keeps_infinite_mean
from monitoring.rules.errors import QueryError, UnsupportedError
from monitoring.rules.expr import MatSel, Node, Paren, Sel
from monitoring.rules.gofmt import LABEL_NAME_RE
from monitoring.rules.gomath import div
from monitoring.rules.quantile import quantile
from monitoring.rules.values import Sample, Series, Vector, unique_vector
from monitoring.tsdb.store import Labels


def _safe(fn: Callable[[float], float]) -> Callable[[float], float]:
    def wrapped(x: float) -> float:
        try:
            return fn(x)
        except OverflowError:
            return math.inf
        except ValueError:
            if x == 0:
                return -math.inf  # log(0)
            return math.nan

    return wrapped


def _sgn(x: float) -> float:
    if x < 0:
        return -1.0
    if x > 0:
        return 1.0
    return x  # 0 or NaN


def round_to_nearest(x: float, to_nearest: float = 1.0) -> float:
    inv = div(1.0, to_nearest)
    return div(math.floor(x * inv + 0.5), inv) if math.isfinite(x * inv) else x


SIMPLE_FUNCS: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": _safe(lambda x: float(math.ceil(x)) if math.isfinite(x) else x),
    "floor": _safe(lambda x: float(math.floor(x)) if math.isfinite(x) else x),
    "exp": _safe(math.exp),
    "ln": gomath.log,
    "log2": gomath.log2,
    "log10": gomath.log10,
    "sqrt": _safe(math.sqrt),
    "sgn": _sgn,
    "deg": lambda x: x * 180 / math.pi,
    "rad": lambda x: x * math.pi / 180,
}


def date_value(name: str, seconds: float) -> float:
    # Go: time.Unix(int64(v), 0).UTC()
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(seconds))
    if name == "minute":
        return float(when.minute)
    if name == "hour":
        return float(when.hour)
    if name == "day_of_month":
        return float(when.day)
    if name == "day_of_week":
        return float(when.isoweekday() % 7)  # Sunday is 0
    if name == "day_of_year":
        return float(when.timetuple().tm_yday)
    if name == "days_in_month":
        return float(calendar.monthrange(when.year, when.month)[1])
    if name == "month":
        return float(when.month)
    return float(when.year)


def go_expand(template: str, match: re.Match) -> str:
    """Go regexp.Expand: $1, ${1}, $name, ${name}, $$; unknown groups expand to ''."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end != -1 else ""
            if end == -1 or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                out.append(c)
                i += 1
                continue
            i = end + 1
        else:
            m = re.match(r"[A-Za-z0-9_]+", template[i + 1 :])
            if not m:
                out.append(c)
                i += 1
                continue
            name = m.group(0)
            i += 1 + len(name)
        try:
            val = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:
            val = None
        out.append(val or "")
    return "".join(out)


def absent_labels(node: Node) -> Labels:
    while isinstance(node, Paren):  # absent((x{a="b"})) is labelled as absent(x{a="b"})
        node = node.expr
    if isinstance(node, MatSel):
        node = node.sel
    if not isinstance(node, Sel):
        return ()
    # In matcher order, as Prometheus' label builder: the first equality matcher of a name
    # sets it, any other matcher of that name deletes it (so {job!~"x", job="a"} keeps job).
    labels: dict[str, str] = {}
    seen: set[str] = set()
    for m in node.matchers:
        if m.name == "__name__":
            continue
        if m.op == "=" and m.name not in seen:
            labels[m.name] = m.value
            seen.add(m.name)
        else:
            labels.pop(m.name, None)
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


@dataclass(slots=True)
class Window:
    """One series' samples inside a range: ``offs[lo:hi]``/``vals[lo:hi]`` of the given
    sequences (not copied until a function needs them), timestamps ``base + offset`` (ms)."""

    labels: Labels
    base: int
    offs: Sequence[int]
    vals: Sequence[float]
    lo: int
    hi: int
    has_reset: bool | None = None  # None: not known, scan for one

    @property
    def values(self) -> Sequence[float]:
        return self.vals[self.lo : self.hi]

    def t(self, i: int) -> int:
        return self.base + self.offs[self.lo + i]

    def points(self) -> list[tuple[int, float]]:
        base = self.base
        offs = self.offs[self.lo : self.hi]
        return [(base + o, v) for o, v in zip(offs, self.values, strict=True)]

    def series(self) -> Series:
        return Series(self.labels, self.points())


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def _linear_regression(points: list[tuple[int, float]], intercept_t: int) -> tuple[float, float]:
    n = 0.0
    sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = points[0][1]
    const_y = True
    for i, (t, v) in enumerate(points):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_t) / 1e3
        sum_x, c_x = _kahan_inc(x, sum_x, c_x)
        sum_y, c_y = _kahan_inc(v, sum_y, c_y)
        sum_xy, c_xy = _kahan_inc(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = _kahan_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = div(cov_xy, var_x)
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def reset_in(last_drop: int | None, first_t: int, last_t: int) -> bool | None:
    """Whether values dropped inside (first_t, last_t], from the series' latest drop only."""
    if last_drop is None or last_drop <= first_t:
        return False
    if last_drop <= last_t:
        return True
    return None  # the latest drop is later; earlier ones are not tracked


def reset_counts(values: Sequence[float]) -> list[int]:
    """counts[i]: how many times the value dropped among values[0..i]."""
    counts = [0] * len(values)
    total = 0
    prev = values[0] if values else 0.0
    for i, v in enumerate(values):
        if v < prev:
            total += 1
        counts[i] = total
        prev = v
    return counts


EXTRAPOLATED = {"rate", "increase", "delta"}


# Integers below this convert to float64 exactly, so int64 arithmetic then a float division in
# numpy gives what Python's int / int gives (which is exact-rounded for any size).
EXACT_INT = 2**51


@dataclass(frozen=True, slots=True)
class Grid:
    """A range query's steps for one range selector, for ``extrapolated_steps``."""

    t: np.ndarray  # the step timestamps (``t = start; t <= end; t += step``), int64
    t_list: list[int]
    ref: np.ndarray  # t - offset: each window's end
    oldest: np.ndarray  # ref - range: each window's start

    @staticmethod
    def of(start: int, end: int, step: int, offset_ms: int, range_ms: int) -> Grid | None:
        """The steps ``start, start + step, … <= end``; None unless every time involved
        converts to float64 exactly (see EXACT_INT)."""
        if not (
            abs(start - offset_ms - range_ms) < EXACT_INT
            and abs(end - offset_ms) < EXACT_INT
            and 0 <= range_ms < EXACT_INT
        ):
            return None
        t = np.arange((end - start) // step + 1, dtype=np.int64) * step + start
        ref = t - offset_ms
        return Grid(t, t.tolist(), ref, ref - range_ms)


def extrapolated_steps(
    name: str,
    base: int,
    offs: Sequence[int],
    vals: Sequence[float],
    may_drop: bool,
    grid: Grid,
    range_ms: int,
) -> list[tuple[int, float]] | None:
    """``extrapolated_at`` at every step at once, for a series without NaN (staleness
    markers already left out); None when the series has one (the step loop handles it).
    ``may_drop``: False when the series is known to have no drop in value.

    The same IEEE operations in the same order, elementwise (numpy's + - * / round exactly
    as Python's and are not fused), so every value is bit-identical; windows holding a
    counter reset are computed by ``extrapolated_at`` itself (the exact, ordered sum).
    Call it under ``np.errstate(all="ignore")``: inf - inf and the like give NaN silently,
    as in Python."""
    v = np.array(vals, dtype=np.float64)
    if np.isnan(v).any():
        return None
    t = np.array(offs, dtype=np.int64) + base
    ref, oldest, times = grid.ref, grid.oldest, grid.t_list
    # The window [ref - range, ref] at each step, by binary search.
    hi = t.searchsorted(ref, side="right")
    lo = t.searchsorted(oldest, side="left")
    n = hi - lo
    ok = n >= 2  # fewer than two samples: no value at that step
    if not ok.all():
        ref, oldest, lo, hi, n = ref[ok], oldest[ok], lo[ok], hi[ok], n[ok]
        times = grid.t[ok].tolist()
        if not times:
            return []
    last = hi - 1
    is_counter, is_rate = name != "delta", name == "rate"
    first_v = v[lo]
    result = v[last] - first_v
    first_t, last_t = t[lo], t[last]
    duration_to_start = (first_t - oldest) / 1000
    duration_to_end = (ref - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg_between = sampled / (n - 1)
    if is_counter:
        duration_to_zero = sampled * (first_v / result)
        clamp = (result > 0) & (first_v >= 0) & (duration_to_zero < duration_to_start)
        duration_to_start = np.where(clamp, duration_to_zero, duration_to_start)
    threshold = avg_between * 1.1
    half = avg_between / 2
    interval = sampled + np.where(duration_to_start < threshold, duration_to_start, half)
    interval += np.where(duration_to_end < threshold, duration_to_end, half)
    factor = interval / sampled
    if is_rate:
        factor /= range_ms / 1000
    values = (result * factor).tolist()
    if is_counter and may_drop:
        # counts[i]: the drops among v[1..i]; the window [lo, hi) holds one if they differ.
        counts = np.concatenate(([0], np.cumsum(v[1:] < v[:-1])))
        for i in np.flatnonzero(counts[last] != counts[lo]).tolist():
            lo_i, hi_i, ref_i = int(lo[i]), int(hi[i]), int(ref[i])
            values[i] = extrapolated_at(
                base, offs, vals, lo_i, hi_i, ref_i, range_ms, True, is_rate, True
            )
    return list(zip(times, values, strict=True))


def _extrapolated(
    w: Window, ref: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    return extrapolated_at(
        w.base, w.offs, w.vals, w.lo, w.hi, ref, range_ms, is_counter, is_rate, w.has_reset
    )


def extrapolated_at(
    base: int,
    offs: Sequence[int],
    values: Sequence[float],
    lo: int,
    hi: int,
    ref: int,
    range_ms: int,
    is_counter: bool,
    is_rate: bool,
    resets: list[int] | bool | None = None,
) -> float | None:
    """Prometheus' extrapolatedRate over values[lo:hi] (timestamps base + offs[i]).

    ``resets[i]``, when given, counts the drops among values[1..i], so a window without one
    is known at once; otherwise a check in C finds them.  The exact, ordered sum is only
    computed when there is a reset."""
    n = hi - lo
    if n < 2:
        return None
    first_v, last_v = values[lo], values[hi - 1]
    result = last_v - first_v
    if isinstance(resets, bool):
        has_reset = resets
    elif resets is not None:
        has_reset = resets[hi - 1] != resets[lo]
    else:
        has_reset = any(map(operator.lt, islice(values, lo + 1, hi), islice(values, lo, hi)))
    if is_counter and has_reset:
        prev = first_v
        for i in range(lo + 1, hi):
            v = values[i]
            if v < prev:
                result += prev
            prev = v
    first_t, last_t = base + offs[lo], base + offs[hi - 1]
    duration_to_start = (first_t - (ref - range_ms)) / 1000
    duration_to_end = (ref - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg_between = sampled / (n - 1)
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = avg_between * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else avg_between / 2
    interval += duration_to_end if duration_to_end < threshold else avg_between / 2
    factor = interval / sampled
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def _check_smoothing_factors(sf: float, tf: float) -> None:
    # Prometheus 2.42's messages (Go's %f).
    if not 0 < sf < 1:
        raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not 0 < tf < 1:
        raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")


def _double_exponential_smoothing(values: Sequence[float], sf: float, tf: float) -> float | None:
    """Prometheus' holt_winters: Holt's linear smoothing of the window, its last level."""
    _check_smoothing_factors(sf, tf)  # per series with samples, as Prometheus checks them
    if len(values) < 2:
        return None
    s0, s1 = 0.0, values[0]
    trend = values[1] - values[0]
    for i in range(1, len(values)):
        if i > 1:  # the first step keeps the initial trend
            trend = tf * (s1 - s0) + (1 - tf) * trend
        s0, s1 = s1, sf * values[i] + (1 - sf) * (s1 + trend)
    return s1


def range_func(name: str, w: Window, ref: int, range_ms: int, arg: Any, t: int) -> float | None:
    if name in ("rate", "increase", "delta"):
        return _extrapolated(w, ref, range_ms, name != "delta", name == "rate")
    n = w.hi - w.lo
    if name == "count_over_time":
        return float(n)
    if name == "last_over_time":
        return w.vals[w.hi - 1]
    values = w.values
    if name in ("irate", "idelta"):
        if n < 2:
            return None
        pv, lv = values[n - 2], values[n - 1]
        if name == "irate" and lv < pv:
            result = lv
        else:
            result = lv - pv
        interval = w.t(n - 1) - w.t(n - 2)
        if interval == 0:
            return None
        return result / (interval / 1000) if name == "irate" else result
    if name == "deriv":
        if n < 2:
            return None
        return _linear_regression(w.points(), w.t(0))[0]
    if name == "predict_linear":
        if n < 2:
            return None
        slope, intercept = _linear_regression(w.points(), t)
        return slope * arg + intercept
    if name == "double_exponential_smoothing":
        return _double_exponential_smoothing(values, *arg)
    if name == "changes":
        changes = 0
        prev = values[0]
        for v in values:
            if v != prev and not (math.isnan(v) and math.isnan(prev)):
                changes += 1
            prev = v
        return float(changes)
    if name == "resets":
        resets = 0
        prev = values[0]
        for v in values:
            if v < prev:
                resets += 1
            prev = v
        return float(resets)
    if name == "count_over_time":
        return float(n)
    if name == "present_over_time":
        return 1.0
    if name == "last_over_time":
        return values[n - 1]
    if name == "sum_over_time":
        total = c = 0.0
        for v in values:
            total, c = _kahan_inc(v, total, c)
        return total + c if not math.isinf(total) else total
    if name == "avg_over_time":
        return _avg_over_time(values)
    if name == "min_over_time":
        result = values[0]
        for v in values:
            if v < result or math.isnan(result):
                result = v
        return result
    if name == "max_over_time":
        result = values[0]
        for v in values:
            if v > result or math.isnan(result):
                result = v
        return result
    if name in ("stddev_over_time", "stdvar_over_time"):
        count = mean = c_mean = aux = c_aux = 0.0
        for v in values:
            count += 1
            delta = v - (mean + c_mean)
            mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
            aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
        var = (aux + c_aux) / count
        return math.sqrt(var) if name == "stddev_over_time" else var
    if name == "quantile_over_time":
        return quantile(arg, list(values))
    raise UnsupportedError(f"function {name}()")


def _avg_over_time(values: list[float]) -> float:
    mean = c = count = 0.0
    for v in values:
        count += 1
        if math.isinf(mean) and keeps_infinite_mean(mean, v):
            continue
        mean, c = _kahan_inc(v / count - mean / count, mean, c)
    if math.isinf(mean):
        return mean
    return mean + c


def label_replace(vec: Vector, dst: str, repl: str, src: str, pattern: str) -> Vector:
    try:
        regex = re.compile(f"^(?:{pattern})$", re.DOTALL)
    except re.error:
        raise QueryError(f"invalid regular expression in label_replace(): {pattern}") from None
    if not LABEL_NAME_RE.match(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for s in vec.samples:
        m = regex.match(dict(s.labels).get(src, ""))
        out.append(_with_label(s, dst, go_expand(repl, m)) if m else Sample(s.labels, s.value))
    return unique_vector(out)


def label_join(vec: Vector, dst: str, sep: str, srcs: list[str]) -> Vector:
    if not LABEL_NAME_RE.match(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    out = []
    for s in vec.samples:
        d = dict(s.labels)
        out.append(_with_label(s, dst, sep.join(d.get(n, "") for n in srcs)))
    return unique_vector(out)


def _with_label(s: Sample, name: str, value: str) -> Sample:
    """``s`` without its timestamp, label ``name`` set to ``value`` (removed when empty)."""
    d = dict(s.labels)
    if value:
        d[name] = value
    else:
        d.pop(name, None)
    return Sample(tuple(sorted(d.items())), s.value)
