"""PromQL evaluation over the monitor's SampleStore, with Prometheus 2.42's semantics.

Public surface (stable):

- ``Engine(store, lookback_delta_ms=300_000, subquery_step_ms=60_000)``: give the global
  ``evaluation_interval`` as ``subquery_step_ms`` (a subquery without a step uses it)
  - ``instant(expr, t_ms) -> Scalar | String | Vector | Matrix`` (a Matrix only when the
    expression is a range selector or subquery, as in Prometheus' instant queries)
  - ``range(expr, start_ms, end_ms, step_ms) -> Matrix``
  ``expr`` is PromQL text or an expression from ``compile_expr``.  Errors raise ``QueryError``
  (bad input, e.g. ``ParseError``, ``UnsupportedError``) with Prometheus' messages where it
  has them ("vector cannot contain metrics with the same labelset", many-to-many matching).
- ``parse_expr(text)`` -> the promql-parser AST (``ParseError`` on bad syntax).
- ``Sel``: a compiled instant-vector selector (``matchers``, ``offset_ms``, ``at``), what
  ``compile_expr`` returns for a plain series selector (the API's ``match[]``).
- ``check_supported(ast)`` raises ``UnsupportedError(construct)`` naming the first construct the
  engine does not evaluate; ``compile_expr(text)`` parses, checks and compiles in one go.
- Result types and JSON: see ``monitoring.rules.values`` (re-exported here): ``Scalar``,
  ``String``, ``Sample``, ``Vector``, ``Series``, ``Matrix``, ``result_json_at``.

Semantics implemented as Prometheus does: the lookback window ``[t - 5m, t]`` for instant
selectors, ``[t - range, t]`` for range selectors, staleness markers ending a series,
extrapolated ``rate``/``increase``/``delta`` (with the counter zero-point clamp), counter resets,
the metric name dropped by functions and arithmetic, vector matching with ``on``/``ignoring``
and ``group_left``/``group_right``, ``bool`` comparisons, set operators, subqueries, ``@``.
Floats are summed in the order Prometheus sums them (series in creation order) and
``ln``/``log2``/``log10``/``^`` use Go's algorithms (``gomath``), so results agree to the last
bit; ``exp()`` and a fractional ``^`` use the C library's exp and may differ from Go's
assembly in the last bit.  Supported functions are ``SUPPORTED_FUNCS``; aggregations
``AGG_OPS``; anything else (e.g. trigonometry) is refused. ``holt_winters`` (Prometheus 2.x)
is read as ``double_exponential_smoothing``, its Prometheus 3 name and the parser's.
"""

from __future__ import annotations

import calendar
import heapq
import math
import operator
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import numpy as np
import promql_parser as pp

from monitoring.rules import gomath
from monitoring.rules.values import (
    Matrix,
    Sample,
    Scalar,
    Series,
    String,
    Value,
    Vector,
    format_value,
    go_float,
    result_json_at,
)
from monitoring.tsdb.store import Labels, Matcher, RawSeries, SampleStore, is_stale

__all__ = [
    "Engine",
    "QueryError",
    "ParseError",
    "UnsupportedError",
    "parse_expr",
    "check_supported",
    "compile_expr",
    "as_rule_query",
    "Sel",
    "Scalar",
    "String",
    "Sample",
    "Vector",
    "Series",
    "Matrix",
    "result_json_at",
]

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class QueryError(Exception):
    """A query that cannot be evaluated; the message is Prometheus' where it has one."""


class ParseError(QueryError):
    pass


class UnsupportedError(QueryError):
    def __init__(self, construct: str) -> None:
        super().__init__(f"unsupported PromQL construct: {construct}")
        self.construct = construct


# ---------------------------------------------------------------------------------------------
# Compiled expression tree (our own nodes: stable identity, fast attribute access)


@dataclass(eq=False)
class Node:
    pass


@dataclass(eq=False)
class NumLit(Node):
    value: float


@dataclass(eq=False)
class StrLit(Node):
    value: str


@dataclass(eq=False)
class Sel(Node):
    matchers: list[Matcher]
    offset_ms: int
    at: float | str | None  # seconds, "start", "end" or None


@dataclass(eq=False)
class MatSel(Node):
    sel: Sel
    range_ms: int


@dataclass(eq=False)
class Subquery(Node):
    expr: Node
    range_ms: int
    step_ms: int | None
    offset_ms: int
    at: float | str | None


@dataclass(eq=False)
class Call(Node):
    name: str
    args: list[Node]


@dataclass(eq=False)
class Agg(Node):
    op: str
    expr: Node
    param: Node | None
    without: bool
    grouping: list[str]


@dataclass(eq=False)
class Bin(Node):
    op: str
    lhs: Node
    rhs: Node
    return_bool: bool
    card: str  # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool
    matching: list[str]
    include: list[str]


@dataclass(eq=False)
class Neg(Node):
    expr: Node


@dataclass(eq=False)
class Paren(Node):
    expr: Node


MATRIX_FUNCS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",  # holt_winters
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "present_over_time",
    "absent_over_time",
}
VECTOR_FUNCS = {
    "abs",
    "ceil",
    "floor",
    "round",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "clamp",
    "clamp_min",
    "clamp_max",
    "absent",
    "time",
    "vector",
    "scalar",
    "label_replace",
    "label_join",
    "timestamp",
    "sort",
    "sort_desc",
    "histogram_quantile",
    "pi",
}
DATE_FUNCS = {
    "minute",
    "hour",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
}
# The trigonometric functions stay unsupported: Go's own implementations round differently
# from the C library in the last bit, and a result that is not Prometheus' is refused.
SUPPORTED_FUNCS = MATRIX_FUNCS | VECTOR_FUNCS | DATE_FUNCS | {"deg", "rad"}
AGG_OPS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "stddev",
    "stdvar",
    "quantile",
    "count_values",
    "group",
}
ARITH_OPS = {"+", "-", "*", "/", "%", "^", "atan2"}
# Prometheus 2.42 keeps the metric name through atan2 (shouldDropMetricName).
NAME_DROPPING_OPS = ARITH_OPS - {"atan2"}
COMPARISON_OPS = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}

_CARD = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _ms(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return delta // timedelta(milliseconds=1)


def _at(at) -> float | str | None:
    if at is None:
        return None
    kind = str(at.type).rsplit(".", 1)[-1]
    if kind == "Start":
        return "start"
    if kind == "End":
        return "end"
    return at.at.timestamp()


# Prometheus 2.x's holt_winters() is Prometheus 3's double_exponential_smoothing(), the only
# name promql-parser knows: outside string literals, the one is read as the other.
_HOLT_WINTERS = re.compile(
    r"""(?<![\w:])holt_winters(?=\s*\()|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`"""
)


def _holt_winters_renamed(text: str) -> str:
    if "holt_winters" not in text:
        return text
    return _HOLT_WINTERS.sub(
        lambda m: "double_exponential_smoothing" if m.group(0) == "holt_winters" else m.group(0),
        text,
    )


def parse_expr(text: str):
    try:
        return pp.parse(_holt_winters_renamed(text))
    except (ValueError, RuntimeError) as exc:
        raise ParseError(str(exc)) from None


def check_supported(ast) -> None:
    """Raise ``UnsupportedError`` naming the first construct the engine cannot evaluate."""
    _compile(ast)


def compile_expr(expr: str | Node) -> Node:
    if isinstance(expr, Node):
        return expr
    return _compile(parse_expr(expr))


def as_rule_query(node: Node) -> Node:
    """The expression as a rule runs it: Prometheus queries ``expr.String()``, which sorts each
    selector's matchers by their text, and that order decides absent()'s labels."""

    def text(m: Matcher) -> str:
        return m.name + m.op + '"' + m.value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, MatSel):
            n = n.sel
        if isinstance(n, Sel):
            names = [m for m in n.matchers if m.name == "__name__" and m.op == "="][:1]
            n.matchers = names + sorted((m for m in n.matchers if m not in names), key=text)
        elif isinstance(n, Subquery):
            stack.append(n.expr)
        else:
            stack.extend(_children(n))
    return node


def _compile(ast) -> Node:
    kind = type(ast).__name__
    if kind == "NumberLiteral":
        return NumLit(float(ast.val))
    if kind == "StringLiteral":
        return StrLit(ast.val)
    if kind == "ParenExpr":
        return Paren(_compile(ast.expr))
    if kind == "VectorSelector":
        return _compile_selector(ast)
    if kind == "MatrixSelector":
        return MatSel(_compile_selector(ast.vector_selector), _ms(ast.range))
    if kind == "SubqueryExpr":
        return Subquery(
            _compile(ast.expr),
            _ms(ast.range),
            _ms(ast.step) if ast.step else None,
            _ms(ast.offset),
            _at(ast.at),
        )
    if kind == "UnaryExpr":
        text = ast.prettify().lstrip()
        inner = _compile(ast.expr)
        return inner if text.startswith("+") else Neg(inner)
    if kind == "Call":
        name = ast.func.name
        if name not in SUPPORTED_FUNCS:
            raise UnsupportedError(f"function {name}()")
        return Call(name, [_compile(a) for a in ast.args])
    if kind == "AggregateExpr":
        op = str(ast.op)
        if op not in AGG_OPS:
            raise UnsupportedError(f"aggregation {op}")
        mod = ast.modifier
        without = mod is not None and str(mod.type).endswith("Without")
        grouping = list(mod.labels) if mod is not None else []
        param = _compile(ast.param) if ast.param is not None else None
        return Agg(op, _compile(ast.expr), param, without, grouping)
    if kind == "BinaryExpr":
        op = str(ast.op)
        if op not in ARITH_OPS | COMPARISON_OPS | SET_OPS:
            raise UnsupportedError(f"binary operator {op}")
        mod = ast.modifier
        card, on, matching, include, return_bool = "one-to-one", False, [], [], False
        if mod is not None:
            if getattr(mod, "fill_values", None) is not None and (
                mod.fill_values.lhs is not None or mod.fill_values.rhs is not None
            ):
                raise UnsupportedError("fill modifiers")
            card = _CARD[str(mod.card).rsplit(".", 1)[-1]]
            if mod.matching is not None:
                on = str(mod.matching.type).endswith("Include")
                matching = list(mod.matching.labels)
            include = list(mod.group_labels or [])
            return_bool = bool(mod.return_bool)
        if op in SET_OPS:
            card = "many-to-many"
        return Bin(
            op, _compile(ast.lhs), _compile(ast.rhs), return_bool, card, on, matching, include
        )
    raise UnsupportedError(kind)


def _compile_selector(vs) -> Sel:
    matchers = []
    if vs.matchers.or_matchers:
        raise UnsupportedError("'or' in label matchers")
    if vs.name:
        matchers.append(Matcher("__name__", "=", vs.name))
    for m in vs.matchers.matchers:
        op = _MATCH_OPS[str(m.op).rsplit(".", 1)[-1].split("(")[0]]
        try:
            matchers.append(Matcher(m.name, op, m.value))
        except re.error as exc:
            raise ParseError(f"invalid regular expression {m.value!r}: {exc}") from None
    return Sel(matchers, _ms(vs.offset), _at(vs.at))


# ---------------------------------------------------------------------------------------------
# Go float semantics


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except (ValueError, ZeroDivisionError):
        return math.nan


def _go_max(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


def _go_min(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a < b else b


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


def _round(x: float, to_nearest: float = 1.0) -> float:
    inv = _div(1.0, to_nearest)
    return _div(math.floor(x * inv + 0.5), inv) if math.isfinite(x * inv) else x


def _sgn(x: float) -> float:
    if x < 0:
        return -1.0
    if x > 0:
        return 1.0
    return x  # 0 or NaN


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


def _date_value(name: str, seconds: float) -> float:
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


def _arith(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return _div(a, b)
    if op == "%":
        return _mod(a, b)
    if op == "^":
        return gomath.pow(a, b)
    return math.atan2(a, b)


def _compare(op: str, a: float, b: float) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    return a <= b


def _drop_name(labels: Labels) -> Labels:
    # Sorted label sets usually start with __name__ (lower-case names sort after it).
    if labels and labels[0][0] == "__name__":
        return labels[1:]
    for i, (name, _) in enumerate(labels):
        if name == "__name__":
            return labels[:i] + labels[i + 1 :]
    return labels


def _check_unique(samples: list[Sample]) -> None:
    seen = set()
    for s in samples:
        if s.labels in seen:
            raise QueryError("vector cannot contain metrics with the same labelset")
        seen.add(s.labels)


def _signature(labels: Labels, on: bool, names: list[str]) -> Labels:
    if on:
        return tuple(p for p in labels if p[0] in names)
    return tuple(p for p in labels if p[0] not in names and p[0] != "__name__")


def _labels_str(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def _go_expand(template: str, match: re.Match) -> str:
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


def _quantile(q: float, values: list[float]) -> float:
    if not values:
        return math.nan
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    vals = sorted(values, key=lambda v: (not math.isnan(v), v))
    n = len(vals)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return vals[lower] * (1 - weight) + vals[upper] * weight


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    top = -math.inf
    for b in merged:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    idx = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            idx = i
            break
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end = merged[idx][0]
    count = merged[idx][1]
    if idx > 0:
        start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    return start + (end - start) * _div(rank, count)  # 0/0: NaN, as in Go


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
    slope = _div(cov_xy, var_x)
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(slots=True)
class _Window:
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


@dataclass
class _Query:
    start: int
    end: int
    step: int
    data: dict[int, list[RawSeries]] = field(default_factory=dict)
    steps: dict[int, list[list[Sample]]] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        store: SampleStore,
        lookback_delta_ms: int = 300_000,
        subquery_step_ms: int = 60_000,
    ) -> None:
        self.store = store
        self.lookback_ms = lookback_delta_ms
        # A subquery without a step (x[5m:]) uses the evaluation interval, as in Prometheus.
        self.subquery_step_ms = subquery_step_ms

    # -- public ------------------------------------------------------------------------------
    def instant(self, expr: str | Node, t_ms: int) -> Value:
        node = compile_expr(expr)
        q = _Query(t_ms, t_ms, 1)
        self._prefetch(node, q, 0)
        value = self._eval(node, t_ms, q)
        if isinstance(value, Vector):
            _check_unique(value.samples)
        return value

    def range(self, expr: str | Node, start_ms: int, end_ms: int, step_ms: int) -> Matrix:
        node = compile_expr(expr)
        if step_ms <= 0:
            raise QueryError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise QueryError("end timestamp must not be before start time")
        q = _Query(start_ms, end_ms, step_ms)
        self._prefetch(node, q, 0)
        root = node
        while isinstance(root, Paren):
            root = root.expr
        direct = self._series_major(root, q)
        if direct is not None and len({lbl for lbl, _ in direct}) == len(direct):
            return Matrix(sorted((Series(lbl, pts) for lbl, pts in direct if pts), key=_by_labels))
        self._precompute_steps(node, q)
        series: dict[Labels, Series] = {}
        t = start_ms
        while t <= end_ms:
            value = self._eval(node, t, q)
            if isinstance(value, Scalar):
                series.setdefault((), Series(())).points.append((t, value.value))
            elif isinstance(value, Vector):
                _check_unique(value.samples)
                for s in value.samples:
                    series.setdefault(s.labels, Series(s.labels)).points.append((t, s.value))
            else:
                kind = "string" if isinstance(value, String) else "range vector"
                raise QueryError(
                    f"invalid expression type {kind!r} for range query, must be Scalar or instant Vector"
                )
            t += step_ms
        return Matrix(sorted(series.values(), key=_by_labels))

    # -- range queries: whole series at a time ----------------------------------------------
    # Selectors and range functions over a selector are evaluated series by series across all
    # steps with pointers that only move forward, instead of a search per step; results are
    # the same as the step-by-step path, which everything else still takes.
    def _series_major(self, node: Node, q: _Query) -> list[tuple[Labels, list]] | None:
        if isinstance(node, Sel) and node.at is None:
            return self._steps_selector(node, q)
        if (
            isinstance(node, Call)
            and node.name in _STEP_FUNCS
            and isinstance(node.args[0], MatSel)
            and node.args[0].sel.at is None
        ):
            return self._steps_range_func(node, q)
        return None

    def _precompute_steps(self, node: Node, q: _Query) -> None:
        if isinstance(node, Subquery):
            return
        found = self._series_major(node, q)
        if found is None:
            for child in _children(node):
                self._precompute_steps(child, q)
            return
        per_step: list[list[Sample]] = [[] for _ in range((q.end - q.start) // q.step + 1)]
        for labels, points in found:
            for t, v in points:
                per_step[(t - q.start) // q.step].append(Sample(labels, v, t))
        q.steps[id(node)] = per_step

    def _steps_selector(self, sel: Sel, q: _Query) -> list[tuple[Labels, list]]:
        out = []
        lookback = self.lookback_ms
        for s in q.data.get(id(sel), ()):
            offs, vals, base = s.offsets, s.values, s.base
            m = s.hi
            i = s.lo
            points = []
            t = q.start
            while t <= q.end:
                ref = t - sel.offset_ms
                limit = ref - base
                while i < m and offs[i] <= limit:
                    i += 1
                if i and offs[i - 1] >= limit - lookback:
                    v = vals[i - 1]
                    if not (v != v and is_stale(v)):
                        points.append((t, v))
                t += q.step
            out.append((s.labels, points))
        return out

    def _steps_range_func(self, call: Call, q: _Query) -> list[tuple[Labels, list]]:
        name = call.name
        ms = call.args[0]
        sel, range_ms = ms.sel, ms.range_ms
        # rate/increase/delta: every step of a series at once with numpy (same results).
        grid = _Grid.of(q, sel.offset_ms, range_ms) if name in _EXTRAPOLATED else None
        out = []
        with np.errstate(all="ignore"):
            for s in q.data.get(id(sel), ()):
                out.append(self._steps_range_series(name, s, q, sel.offset_ms, range_ms, grid))
        return out

    def _steps_range_series(
        self, name: str, s: RawSeries, q: _Query, offset_ms: int, range_ms: int, grid: _Grid | None
    ) -> tuple[Labels, list]:
        keep = name == "last_over_time"
        offs, vals, base = s.offsets[s.lo : s.hi], s.values[s.lo : s.hi], s.base
        if s.has_nan:
            kept = [(o, v) for o, v in zip(offs, vals, strict=True) if not is_stale(v)]
            offs, vals = [o for o, _ in kept], [v for _, v in kept]
        if grid is not None and abs(base) < _EXACT_INT:
            # The store's last_drop is only known good without NaNs (a drop across a
            # staleness marker is not recorded).
            may_drop = s.has_nan or (s.last_drop is not None and s.last_drop > base + offs[0])
            points = _extrapolated_steps(name, base, offs, vals, may_drop, grid, range_ms)
            if points is not None:
                return _drop_name(s.labels), points
        m = len(offs)
        resets = _reset_counts(vals)
        lo = hi = 0
        points = []
        t = q.start
        while t <= q.end:
            ref = t - offset_ms
            while hi < m and offs[hi] <= ref - base:
                hi += 1
            while lo < hi and offs[lo] < ref - range_ms - base:
                lo += 1
            if lo < hi:
                if name in _EXTRAPOLATED:
                    value = _extrapolated_at(
                        base,
                        offs,
                        vals,
                        lo,
                        hi,
                        ref,
                        range_ms,
                        name != "delta",
                        name == "rate",
                        resets,
                    )
                else:
                    w = _Window(s.labels, base, offs, vals, lo, hi)
                    value = _range_func(name, w, ref, range_ms, None, t)
                if value is not None:
                    points.append((t, value))
            t += q.step
        return (s.labels if keep else _drop_name(s.labels)), points

    # -- data --------------------------------------------------------------------------------
    def _sel_time(self, sel_at, t: int, q: _Query) -> int:
        if sel_at is None:
            return t
        if sel_at == "start":
            return q.start
        if sel_at == "end":
            return q.end
        return int(round(sel_at * 1000))

    def _prefetch(self, node: Node, q: _Query, extra_ms: int, sub: tuple[int, int] | None = None):
        """Fetch each selector's samples once for the whole query."""
        lo_t, hi_t = sub if sub else (q.start, q.end)
        if isinstance(node, Sel | MatSel):
            sel = node if isinstance(node, Sel) else node.sel
            window = self.lookback_ms if isinstance(node, Sel) else node.range_ms
            if sel.at is not None:
                lo_t = hi_t = self._sel_time(sel.at, lo_t, q)
            lo = lo_t - sel.offset_ms - window - extra_ms
            hi = hi_t - sel.offset_ms
            q.data[id(sel)] = self.store.select_raw(sel.matchers, lo, hi)
            return
        if isinstance(node, Subquery):
            if node.at is not None:
                lo_t = hi_t = self._sel_time(node.at, lo_t, q)
            inner = (lo_t - node.offset_ms - node.range_ms - extra_ms, hi_t - node.offset_ms)
            self._prefetch(node.expr, q, 0, inner)
            return
        for child in _children(node):
            self._prefetch(child, q, extra_ms, sub)

    def _eval(self, node: Node, t: int, q: _Query) -> Value:
        if q.steps:
            steps = q.steps.get(id(node))
            if steps is not None:
                index, rest = divmod(t - q.start, q.step)
                if rest == 0 and 0 <= index < len(steps):
                    return Vector(steps[index])
        if isinstance(node, NumLit):
            return Scalar(node.value)
        if isinstance(node, StrLit):
            return String(node.value)
        if isinstance(node, Paren):
            return self._eval(node.expr, t, q)
        if isinstance(node, Sel):
            return self._eval_selector(node, t, q)
        if isinstance(node, MatSel):
            return self._eval_matrix(node, t, q)
        if isinstance(node, Subquery):
            return self._eval_subquery(node, t, q)
        if isinstance(node, Neg):
            value = self._eval(node.expr, t, q)
            if isinstance(value, Scalar):
                return Scalar(-value.value)
            samples = [Sample(_drop_name(s.labels), -s.value) for s in value.samples]
            _check_unique(samples)
            return Vector(samples)
        if isinstance(node, Call):
            return self._eval_call(node, t, q)
        if isinstance(node, Agg):
            return self._eval_agg(node, t, q)
        if isinstance(node, Bin):
            return self._eval_bin(node, t, q)
        raise UnsupportedError(type(node).__name__)

    def _eval_selector(self, sel: Sel, t: int, q: _Query) -> Vector:
        ref = self._sel_time(sel.at, t, q) - sel.offset_ms
        oldest = ref - self.lookback_ms
        out = []
        for s in q.data.get(id(sel), ()):
            base = s.base
            i = bisect_right(s.offsets, ref - base, s.lo, s.hi) - 1
            if i < s.lo:
                continue
            ts = base + s.offsets[i]
            if ts < oldest:
                continue
            v = s.values[i]
            if v != v and is_stale(v):
                continue
            out.append(Sample(s.labels, v, ts))
        return Vector(out)

    def _range_points(self, sel: Sel, range_ms: int, t: int, q: _Query) -> list[_Window]:
        """Each series' samples in ``[ref - range, ref]``, staleness markers left out."""
        ref = self._sel_time(sel.at, t, q) - sel.offset_ms
        out = []
        for s in q.data.get(id(sel), ()):
            base = s.base
            lo = bisect_left(s.offsets, ref - range_ms - base, s.lo, s.hi)
            hi = bisect_right(s.offsets, ref - base, s.lo, s.hi)
            if lo >= hi:
                continue
            if s.has_nan:
                kept = [
                    (o, v)
                    for o, v in zip(s.offsets[lo:hi], s.values[lo:hi], strict=True)
                    if not is_stale(v)
                ]
                if kept:
                    offs, vals = [o for o, _ in kept], [v for _, v in kept]
                    out.append(_Window(s.labels, base, offs, vals, 0, len(kept)))
                continue
            has_reset = _reset_in(s.last_drop, base + s.offsets[lo], base + s.offsets[hi - 1])
            out.append(_Window(s.labels, base, s.offsets, s.values, lo, hi, has_reset))
        return out

    def _eval_matrix(self, node: MatSel, t: int, q: _Query) -> Matrix:
        return Matrix([w.series() for w in self._range_points(node.sel, node.range_ms, t, q)])

    def _subquery_points(self, node: Subquery, t: int, q: _Query) -> list[_Window]:
        step = node.step_ms or self.subquery_step_ms
        ref = self._sel_time(node.at, t, q) - node.offset_ms
        start = ref - node.range_ms
        first = -(-start // step) * step  # align to the step, as Prometheus does
        series: dict[Labels, list[tuple[int, float]]] = {}
        ts = first
        while ts <= ref:
            value = self._eval(node.expr, ts, q)
            if isinstance(value, Scalar):
                series.setdefault((), []).append((ts, value.value))
            elif isinstance(value, Vector):
                for s in value.samples:
                    series.setdefault(s.labels, []).append((ts, s.value))
            ts += step
        return [
            _Window(lbl, 0, [p[0] for p in pts], [p[1] for p in pts], 0, len(pts))
            for lbl, pts in series.items()
        ]

    def _eval_subquery(self, node: Subquery, t: int, q: _Query) -> Matrix:
        return Matrix([w.series() for w in self._subquery_points(node, t, q)])

    # -- functions ---------------------------------------------------------------------------
    def _eval_call(self, node: Call, t: int, q: _Query) -> Value:
        name = node.name
        if name in MATRIX_FUNCS:
            return self._eval_range_func(node, t, q)
        if name == "time":
            return Scalar(t / 1000)
        if name == "pi":
            return Scalar(math.pi)
        args = node.args
        if name in DATE_FUNCS:
            if not args:
                return Vector([Sample((), _date_value(name, t / 1000))])
            vec = self._vector(args[0], t, q)
            out = []
            for s in vec.samples:
                value = _date_value(name, s.value) if math.isfinite(s.value) else math.nan
                out.append(Sample(_drop_name(s.labels), value))
            return _unique(out)
        if name == "vector":
            return Vector([Sample((), self._scalar(args[0], t, q))])
        if name == "scalar":
            vec = self._vector(args[0], t, q)
            return Scalar(vec.samples[0].value if len(vec.samples) == 1 else math.nan)
        if name == "absent":
            vec = self._vector(args[0], t, q)
            if vec.samples:
                return Vector([])
            return Vector([Sample(_absent_labels(args[0]), 1.0)])
        if name == "timestamp":
            inner = args[0]
            while isinstance(inner, Paren):
                inner = inner.expr
            vec = self._vector(inner, t, q)
            if isinstance(inner, Sel):
                out = [Sample(_drop_name(s.labels), s.t_ms / 1000) for s in vec.samples]
            else:
                out = [Sample(_drop_name(s.labels), t / 1000) for s in vec.samples]
            return _unique(out)
        vec = self._vector(args[0], t, q) if name != "histogram_quantile" else None
        if name in SIMPLE_FUNCS:
            fn = SIMPLE_FUNCS[name]
            return _unique([Sample(_drop_name(s.labels), fn(s.value)) for s in vec.samples])
        if name == "round":
            to = self._scalar(args[1], t, q) if len(args) > 1 else 1.0
            return _unique([Sample(_drop_name(s.labels), _round(s.value, to)) for s in vec.samples])
        if name in ("clamp", "clamp_min", "clamp_max"):
            if name == "clamp":
                lo, hi = self._scalar(args[1], t, q), self._scalar(args[2], t, q)
                if hi < lo:
                    return Vector([])
                fn = lambda v: _go_max(lo, _go_min(hi, v))  # noqa: E731
            elif name == "clamp_min":
                lo = self._scalar(args[1], t, q)
                fn = lambda v: _go_max(v, lo)  # noqa: E731
            else:
                hi = self._scalar(args[1], t, q)
                fn = lambda v: _go_min(v, hi)  # noqa: E731
            return _unique([Sample(_drop_name(s.labels), fn(s.value)) for s in vec.samples])
        if name in ("sort", "sort_desc"):
            desc = name == "sort_desc"
            samples = sorted(
                vec.samples,
                key=lambda s: (not math.isnan(s.value), -s.value if desc else s.value),
            )
            return Vector(samples)
        if name == "label_replace":
            return self._label_replace(vec, args, t, q)
        if name == "label_join":
            return self._label_join(vec, args, t, q)
        if name == "histogram_quantile":
            phi = self._scalar(args[0], t, q)
            return self._histogram_quantile(phi, self._vector(args[1], t, q))
        raise UnsupportedError(f"function {name}()")

    def _label_replace(self, vec: Vector, args: list[Node], t: int, q: _Query) -> Vector:
        dst, repl, src, pattern = (self._string(a, t, q) for a in args[1:5])
        try:
            regex = re.compile(f"^(?:{pattern})$", re.DOTALL)
        except re.error:
            raise QueryError(f"invalid regular expression in label_replace(): {pattern}") from None
        if not LABEL_NAME_RE.match(dst):
            raise QueryError(f"invalid destination label name in label_replace(): {dst}")
        out = []
        for s in vec.samples:
            d = dict(s.labels)
            m = regex.match(d.get(src, ""))
            if m:
                value = _go_expand(repl, m)
                if value:
                    d[dst] = value
                else:
                    d.pop(dst, None)
            out.append(Sample(tuple(sorted(d.items())), s.value))
        return _unique(out)

    def _label_join(self, vec: Vector, args: list[Node], t: int, q: _Query) -> Vector:
        dst = self._string(args[1], t, q)
        sep = self._string(args[2], t, q)
        srcs = [self._string(a, t, q) for a in args[3:]]
        if not LABEL_NAME_RE.match(dst):
            raise QueryError(f"invalid destination label name in label_join(): {dst}")
        out = []
        for s in vec.samples:
            d = dict(s.labels)
            value = sep.join(d.get(n, "") for n in srcs)
            if value:
                d[dst] = value
            else:
                d.pop(dst, None)
            out.append(Sample(tuple(sorted(d.items())), s.value))
        return _unique(out)

    def _histogram_quantile(self, phi: float, vec: Vector) -> Vector:
        groups: dict[Labels, list[tuple[float, float]]] = {}
        for s in vec.samples:
            d = dict(s.labels)
            le = d.pop("le", None)
            if le is None:
                continue
            try:
                bound = go_float(le)
            except ValueError:
                continue
            groups.setdefault(tuple(sorted(d.items())), []).append((bound, s.value))
        out = [
            Sample(_drop_name(key), _bucket_quantile(phi, buckets))
            for key, buckets in groups.items()
        ]
        return _unique(out)

    def _eval_range_func(self, node: Call, t: int, q: _Query) -> Vector:
        name = node.name
        arg_index = 1 if name == "quantile_over_time" else 0
        arg = node.args[arg_index]
        scalar_arg = None
        if name == "quantile_over_time":
            scalar_arg = self._scalar(node.args[0], t, q)
        elif name == "predict_linear":
            scalar_arg = self._scalar(node.args[1], t, q)
        elif name == "double_exponential_smoothing":
            scalar_arg = (self._scalar(node.args[1], t, q), self._scalar(node.args[2], t, q))
        if isinstance(arg, MatSel):
            pairs = self._range_points(arg.sel, arg.range_ms, t, q)
            range_ms = arg.range_ms
            ref = self._sel_time(arg.sel.at, t, q) - arg.sel.offset_ms
        elif isinstance(arg, Subquery):
            pairs = self._subquery_points(arg, t, q)
            range_ms = arg.range_ms
            ref = self._sel_time(arg.at, t, q) - arg.offset_ms
        else:
            raise UnsupportedError(f"{name}() over {type(arg).__name__}")
        if name == "absent_over_time":
            if pairs:
                return Vector([])
            return Vector([Sample(_absent_labels(arg), 1.0)])
        out = []
        # last_over_time is the one range function that keeps the metric name.
        keep = name == "last_over_time"
        for w in pairs:
            value = _range_func(name, w, ref, range_ms, scalar_arg, t)
            if value is not None:
                out.append(Sample(w.labels if keep else _drop_name(w.labels), value))
        return _unique(out)

    # -- aggregation -------------------------------------------------------------------------
    def _eval_agg(self, node: Agg, t: int, q: _Query) -> Vector:
        vec = self._vector(node.expr, t, q)
        op = node.op
        param = None
        if op in ("topk", "bottomk", "quantile"):
            param = self._scalar(node.param, t, q)
        elif op == "count_values":
            param = self._string(node.param, t, q)
            if not LABEL_NAME_RE.match(param):
                raise QueryError(f"invalid label name {param!r}")
        grouping = node.grouping
        groups: dict[Labels, list[Sample]] = {}
        if op == "count_values" and not node.without:
            grouping = [*grouping, param]
        for s in vec.samples:
            labels = s.labels
            if op == "count_values":
                # The value label is set first, so `without` can drop it again, as in Prometheus.
                d = dict(labels)
                d[param] = format_value(s.value)
                labels = tuple(sorted(d.items()))
            if node.without:
                key = tuple(p for p in labels if p[0] not in grouping and p[0] != "__name__")
            else:
                key = tuple(p for p in labels if p[0] in grouping)
            groups.setdefault(key, []).append(s)
        out: list[Sample] = []
        for key, members in groups.items():
            values = [s.value for s in members]
            if op in ("topk", "bottomk"):
                out.extend(_topk(op, param, members))
                continue
            out.append(Sample(key, _aggregate(op, values, param)))
        return Vector(out)

    def _eval_bin(self, node: Bin, t: int, q: _Query) -> Value:
        lhs = self._eval(node.lhs, t, q)
        rhs = self._eval(node.rhs, t, q)
        op = node.op
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            if op in COMPARISON_OPS:
                return Scalar(1.0 if _compare(op, lhs.value, rhs.value) else 0.0)
            return Scalar(_arith(op, lhs.value, rhs.value))
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            if op in SET_OPS:
                return _set_op(node, lhs, rhs)
            return _vector_binop(node, lhs, rhs)
        if isinstance(lhs, Vector):
            return _vector_scalar(node, lhs, rhs.value, swap=False)
        return _vector_scalar(node, rhs, lhs.value, swap=True)

    # -- helpers -----------------------------------------------------------------------------
    def _vector(self, node: Node, t: int, q: _Query) -> Vector:
        value = self._eval(node, t, q)
        if not isinstance(value, Vector):
            raise QueryError(f"expected instant vector, got {type(value).__name__}")
        return value

    def _scalar(self, node: Node, t: int, q: _Query) -> float:
        value = self._eval(node, t, q)
        if not isinstance(value, Scalar):
            raise QueryError(f"expected scalar, got {type(value).__name__}")
        return value.value

    def _string(self, node: Node, t: int, q: _Query) -> str:
        value = self._eval(node, t, q)
        if not isinstance(value, String):
            raise QueryError(f"expected string, got {type(value).__name__}")
        return value.value


# Range functions of one range-selector argument that the series-major path evaluates.
_STEP_FUNCS = MATRIX_FUNCS - {
    "quantile_over_time",
    "predict_linear",
    "double_exponential_smoothing",
    "absent_over_time",
}


def _reset_in(last_drop: int | None, first_t: int, last_t: int) -> bool | None:
    """Whether values dropped inside (first_t, last_t], from the series' latest drop only."""
    if last_drop is None or last_drop <= first_t:
        return False
    if last_drop <= last_t:
        return True
    return None  # the latest drop is later; earlier ones are not tracked


def _reset_counts(values: Sequence[float]) -> list[int]:
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


def _by_labels(series: Series) -> Labels:
    return series.labels


def _children(node: Node) -> list[Node]:
    if isinstance(node, Paren | Neg):
        return [node.expr]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Agg):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, Bin):
        return [node.lhs, node.rhs]
    return []


def _unique(samples: list[Sample]) -> Vector:
    _check_unique(samples)
    return Vector(samples)


def _absent_labels(node: Node) -> Labels:
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


_EXTRAPOLATED = {"rate", "increase", "delta"}
# Integers below this convert to float64 exactly, so int64 arithmetic then a float division in
# numpy gives what Python's int / int gives (which is exact-rounded for any size).
_EXACT_INT = 2**51


@dataclass(frozen=True, slots=True)
class _Grid:
    """A range query's steps for one range selector, for ``_extrapolated_steps``."""

    t: np.ndarray  # the step timestamps (``t = start; t <= end; t += step``), int64
    t_list: list[int]
    ref: np.ndarray  # t - offset: each window's end
    oldest: np.ndarray  # ref - range: each window's start

    @staticmethod
    def of(q: _Query, offset_ms: int, range_ms: int) -> _Grid | None:
        """None unless every time involved converts to float64 exactly (see _EXACT_INT)."""
        if not (
            abs(q.start - offset_ms - range_ms) < _EXACT_INT
            and abs(q.end - offset_ms) < _EXACT_INT
            and 0 <= range_ms < _EXACT_INT
        ):
            return None
        t = np.arange((q.end - q.start) // q.step + 1, dtype=np.int64) * q.step + q.start
        ref = t - offset_ms
        return _Grid(t, t.tolist(), ref, ref - range_ms)


def _extrapolated_steps(
    name: str,
    base: int,
    offs: Sequence[int],
    vals: Sequence[float],
    may_drop: bool,
    grid: _Grid,
    range_ms: int,
) -> list[tuple[int, float]] | None:
    """``_extrapolated_at`` at every step at once, for a series without NaN (staleness
    markers already left out); None when the series has one (the step loop handles it).
    ``may_drop``: False when the series is known to have no drop in value.

    The same IEEE operations in the same order, elementwise (numpy's + - * / round exactly
    as Python's and are not fused), so every value is bit-identical; windows holding a
    counter reset are computed by ``_extrapolated_at`` itself (the exact, ordered sum).
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
            values[i] = _extrapolated_at(
                base, offs, vals, lo_i, hi_i, ref_i, range_ms, True, is_rate, True
            )
    return list(zip(times, values, strict=True))


def _extrapolated(
    w: _Window, ref: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    return _extrapolated_at(
        w.base, w.offs, w.vals, w.lo, w.hi, ref, range_ms, is_counter, is_rate, w.has_reset
    )


def _extrapolated_at(
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


def _range_func(name: str, w: _Window, ref: int, range_ms: int, arg: Any, t: int) -> float | None:
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
        return _quantile(arg, list(values))
    raise UnsupportedError(f"function {name}()")


def _avg_over_time(values: list[float]) -> float:
    mean = c = count = 0.0
    for v in values:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, c = _kahan_inc(v / count - mean / count, mean, c)
    if math.isinf(mean):
        return mean
    return mean + c


def _aggregate(op: str, values: list[float], param) -> float:
    if op == "sum":
        total = 0.0
        for v in values:
            total += v
        return total
    if op == "count":
        return float(len(values))
    if op == "group":
        return 1.0
    if op == "min":
        result = values[0]
        for v in values[1:]:
            if result > v or math.isnan(result):
                result = v
        return result
    if op == "max":
        result = values[0]
        for v in values[1:]:
            if result < v or math.isnan(result):
                result = v
        return result
    if op == "avg":
        mean = values[0]
        count = 1
        for v in values[1:]:
            count += 1
            if math.isinf(mean):
                if math.isinf(v) and (mean > 0) == (v > 0):
                    continue
                if not math.isinf(v) and not math.isnan(v):
                    continue
            mean += v / count - mean / count
        return mean
    if op in ("stddev", "stdvar"):
        # Started from the first value, as Prometheus does (a lone Inf has variance 0).
        count = 1
        mean, var = values[0], 0.0
        for v in values[1:]:
            count += 1
            delta = v - mean
            mean += delta / count
            var += delta * (v - mean)
        var /= count
        return math.sqrt(var) if op == "stddev" else var
    if op == "quantile":
        return _quantile(param, values)
    if op == "count_values":
        return float(len(values))
    raise UnsupportedError(f"aggregation {op}")


def _topk(op: str, k: float, members: list[Sample]) -> list[Sample]:
    if math.isnan(k) or k < 1:
        return []
    n = min(int(k), len(members))

    # NaN ranks lowest for topk and for bottomk, as in Prometheus.
    def rank(s: Sample) -> float:
        return -math.inf if math.isnan(s.value) else s.value

    if op == "topk":
        chosen = heapq.nlargest(n, members, key=rank)
    else:
        chosen = heapq.nsmallest(
            n, members, key=lambda s: math.inf if math.isnan(s.value) else s.value
        )
    return [Sample(s.labels, s.value) for s in chosen]


def _vector_scalar(node: Bin, vec: Vector, scalar: float, swap: bool) -> Vector:
    op = node.op
    out = []
    for s in vec.samples:
        lv, rv = (scalar, s.value) if swap else (s.value, scalar)
        if op in COMPARISON_OPS:
            keep = _compare(op, lv, rv)
            value = s.value
            if node.return_bool:
                value, keep = (1.0 if keep else 0.0), True
            if keep:
                labels = _drop_name(s.labels) if node.return_bool else s.labels
                out.append(Sample(labels, value))
        else:
            labels = _drop_name(s.labels) if op in NAME_DROPPING_OPS else s.labels
            out.append(Sample(labels, _arith(op, lv, rv)))
    return _unique(out) if op in ARITH_OPS or node.return_bool else Vector(out)


def _vector_binop(node: Bin, lhs: Vector, rhs: Vector) -> Vector:
    if not lhs.samples or not rhs.samples:
        return Vector([])  # Prometheus short-circuits before checking either side's matching
    op = node.op
    card = node.card
    on, names = node.on, node.matching
    if card == "one-to-many":
        lhs, rhs = rhs, lhs
    right: dict[Labels, Sample] = {}
    for rs in rhs.samples:
        sig = _signature(rs.labels, on, names)
        if sig in right:
            side = "left" if card == "one-to-many" else "right"
            raise QueryError(
                f"found duplicate series for the match group {_labels_str(sig)} on the {side} "
                f"hand-side of the operation: [{_labels_str(rs.labels)}, "
                f"{_labels_str(right[sig].labels)}];many-to-many matching not allowed: "
                "matching labels must be unique on one side"
            )
        right[sig] = rs
    matched: dict[Labels, set | None] = {}
    out = []
    for ls in lhs.samples:
        sig = _signature(ls.labels, on, names)
        rs = right.get(sig)
        if rs is None:
            continue
        vl, vr = (rs.value, ls.value) if card == "one-to-many" else (ls.value, rs.value)
        if op in COMPARISON_OPS:
            keep = _compare(op, vl, vr)
            value = vl
        else:
            keep, value = True, _arith(op, vl, vr)
        if node.return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        metric = _result_metric(ls.labels, rs.labels, node)
        if node.return_bool:
            metric = _drop_name(metric)
        if card == "one-to-one":
            if sig in matched:
                raise QueryError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            matched[sig] = None
        else:
            inserted = matched.setdefault(sig, set())
            if metric in inserted:
                raise QueryError(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                )
            inserted.add(metric)
        out.append(Sample(metric, value))
    return _unique(out)


def _result_metric(lhs: Labels, rhs: Labels, node: Bin) -> Labels:
    d = dict(lhs)
    if node.op in NAME_DROPPING_OPS:
        d.pop("__name__", None)
    if node.card == "one-to-one":
        if node.on:
            d = {k: v for k, v in d.items() if k in node.matching}
        else:
            for name in node.matching:
                d.pop(name, None)
    if node.include:
        rd = dict(rhs)
        for name in node.include:
            if rd.get(name, ""):
                d[name] = rd[name]
            else:
                d.pop(name, None)
    return tuple(sorted(d.items()))


def _set_op(node: Bin, lhs: Vector, rhs: Vector) -> Vector:
    on, names = node.on, node.matching
    if node.op == "and":
        sigs = {_signature(s.labels, on, names) for s in rhs.samples}
        return Vector([s for s in lhs.samples if _signature(s.labels, on, names) in sigs])
    if node.op == "unless":
        sigs = {_signature(s.labels, on, names) for s in rhs.samples}
        return Vector([s for s in lhs.samples if _signature(s.labels, on, names) not in sigs])
    sigs = {_signature(s.labels, on, names) for s in lhs.samples}
    return Vector(
        list(lhs.samples) + [s for s in rhs.samples if _signature(s.labels, on, names) not in sigs]
    )
