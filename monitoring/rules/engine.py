"""PromQL evaluation over the tsdb's SampleStore, with Prometheus 2.42's semantics
(Prometheus' ``engine.go``): selectors, subqueries, ``@``, and the walk of the expression tree.

Public surface (stable):

- ``Engine(store, lookback_delta_ms=300_000, subquery_step_ms=60_000)``: give the global
  ``evaluation_interval`` as ``subquery_step_ms`` (a subquery without a step uses it)
  - ``instant(expr, t_ms) -> Scalar | String | Vector | Matrix`` (a Matrix only when the
    expression is a range selector or subquery, as in Prometheus' instant queries)
  - ``range(expr, start_ms, end_ms, step_ms) -> Matrix``
  ``expr`` is PromQL text or an expression from ``expr.compile_expr``.  Errors raise
  ``QueryError`` (bad input, e.g. ``ParseError``, ``UnsupportedError``; see ``errors``) with
  Prometheus' messages where it has them ("vector cannot contain metrics with the same
  labelset", many-to-many matching).

The parts, as Prometheus splits them: ``expr`` (parsing, the compiled nodes, what is
supported), ``functions`` (function implementations, range functions, extrapolation),
``quantile``, ``aggregations``, ``binops`` (operators and vector matching), ``values`` (result
types), ``gomath`` (Go's float functions).  This module fetches each selector's samples once
per query and evaluates the tree; range queries over a plain selector or a range function of
one are evaluated series by series across all steps (same results, fewer searches).

Semantics implemented as Prometheus does: the lookback window ``[t - 5m, t]`` for instant
selectors, ``[t - range, t]`` for range selectors, staleness markers ending a series,
extrapolated ``rate``/``increase``/``delta`` (with the counter zero-point clamp), counter resets,
the metric name dropped by functions and arithmetic, vector matching with ``on``/``ignoring``
and ``group_left``/``group_right``, ``bool`` comparisons, set operators, subqueries, ``@``.
Floats are summed in the order Prometheus sums them (series in creation order) and
``ln``/``log2``/``log10``/``^`` use Go's algorithms (``gomath``), so results agree to the last
bit; ``exp()`` and a fractional ``^`` use the C library's exp and may differ from Go's
assembly in the last bit.  Supported functions are ``SUPPORTED_FUNCS``; aggregations
``AGG_OPS``; anything else (e.g. trigonometry) is refused.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np

from monitoring.rules import functions
from monitoring.rules.aggregations import aggregate_vector
from monitoring.rules.binops import binary_op
from monitoring.rules.errors import QueryError, UnsupportedError
from monitoring.rules.expr import (
    DATE_FUNCS,
    MATRIX_FUNCS,
    Agg,
    Bin,
    Call,
    MatSel,
    Neg,
    Node,
    NumLit,
    Paren,
    Sel,
    StrLit,
    Subquery,
    children,
    compile_expr,
)
from monitoring.rules.functions import (
    EXACT_INT,
    EXTRAPOLATED,
    SIMPLE_FUNCS,
    Grid,
    Window,
    absent_labels,
    date_value,
    extrapolated_at,
    range_func,
    reset_counts,
    reset_in,
    round_to_nearest,
)
from monitoring.rules.gofmt import LABEL_NAME_RE
from monitoring.rules.gomath import go_max, go_min
from monitoring.rules.quantile import histogram_quantile
from monitoring.rules.values import (
    Matrix,
    Sample,
    Scalar,
    Series,
    String,
    Value,
    Vector,
    check_unique,
    drop_name,
    unique_vector,
)
from monitoring.tsdb.store import Labels, RawSeries, SampleStore, is_stale

__all__ = ["Engine"]


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
            check_unique(value.samples)
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
                check_unique(value.samples)
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
            for child in children(node):
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
        grid = (
            Grid.of(q.start, q.end, q.step, sel.offset_ms, range_ms)
            if name in EXTRAPOLATED
            else None
        )
        out = []
        with np.errstate(all="ignore"):
            for s in q.data.get(id(sel), ()):
                out.append(self._steps_range_series(name, s, q, sel.offset_ms, range_ms, grid))
        return out

    def _steps_range_series(
        self, name: str, s: RawSeries, q: _Query, offset_ms: int, range_ms: int, grid: Grid | None
    ) -> tuple[Labels, list]:
        keep = name == "last_over_time"
        offs, vals, base = s.offsets[s.lo : s.hi], s.values[s.lo : s.hi], s.base
        if s.has_nan:
            kept = [(o, v) for o, v in zip(offs, vals, strict=True) if not is_stale(v)]
            offs, vals = [o for o, _ in kept], [v for _, v in kept]
        if grid is not None and abs(base) < EXACT_INT:
            # The store's last_drop is only known good without NaNs (a drop across a
            # staleness marker is not recorded).
            may_drop = s.has_nan or (s.last_drop is not None and s.last_drop > base + offs[0])
            points = functions.extrapolated_steps(name, base, offs, vals, may_drop, grid, range_ms)
            if points is not None:
                return drop_name(s.labels), points
        m = len(offs)
        resets = reset_counts(vals)
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
                if name in EXTRAPOLATED:
                    value = extrapolated_at(
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
                    w = Window(s.labels, base, offs, vals, lo, hi)
                    value = range_func(name, w, ref, range_ms, None, t)
                if value is not None:
                    points.append((t, value))
            t += q.step
        return (s.labels if keep else drop_name(s.labels)), points

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
        for child in children(node):
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
            samples = [Sample(drop_name(s.labels), -s.value) for s in value.samples]
            check_unique(samples)
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

    def _range_points(self, sel: Sel, range_ms: int, t: int, q: _Query) -> list[Window]:
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
                    out.append(Window(s.labels, base, offs, vals, 0, len(kept)))
                continue
            has_reset = reset_in(s.last_drop, base + s.offsets[lo], base + s.offsets[hi - 1])
            out.append(Window(s.labels, base, s.offsets, s.values, lo, hi, has_reset))
        return out

    def _eval_matrix(self, node: MatSel, t: int, q: _Query) -> Matrix:
        return Matrix([w.series() for w in self._range_points(node.sel, node.range_ms, t, q)])

    def _subquery_points(self, node: Subquery, t: int, q: _Query) -> list[Window]:
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
            Window(lbl, 0, [p[0] for p in pts], [p[1] for p in pts], 0, len(pts))
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
                return Vector([Sample((), date_value(name, t / 1000))])
            vec = self._vector(args[0], t, q)
            out = []
            for s in vec.samples:
                value = date_value(name, s.value) if math.isfinite(s.value) else math.nan
                out.append(Sample(drop_name(s.labels), value))
            return unique_vector(out)
        if name == "vector":
            return Vector([Sample((), self._scalar(args[0], t, q))])
        if name == "scalar":
            vec = self._vector(args[0], t, q)
            return Scalar(vec.samples[0].value if len(vec.samples) == 1 else math.nan)
        if name == "absent":
            vec = self._vector(args[0], t, q)
            if vec.samples:
                return Vector([])
            return Vector([Sample(absent_labels(args[0]), 1.0)])
        if name == "timestamp":
            inner = args[0]
            while isinstance(inner, Paren):
                inner = inner.expr
            vec = self._vector(inner, t, q)
            if isinstance(inner, Sel):
                out = [Sample(drop_name(s.labels), s.t_ms / 1000) for s in vec.samples]
            else:
                out = [Sample(drop_name(s.labels), t / 1000) for s in vec.samples]
            return unique_vector(out)
        vec = self._vector(args[0], t, q) if name != "histogram_quantile" else None
        if name in SIMPLE_FUNCS:
            fn = SIMPLE_FUNCS[name]
            return unique_vector([Sample(drop_name(s.labels), fn(s.value)) for s in vec.samples])
        if name == "round":
            to = self._scalar(args[1], t, q) if len(args) > 1 else 1.0
            return unique_vector(
                [Sample(drop_name(s.labels), round_to_nearest(s.value, to)) for s in vec.samples]
            )
        if name in ("clamp", "clamp_min", "clamp_max"):
            if name == "clamp":
                lo, hi = self._scalar(args[1], t, q), self._scalar(args[2], t, q)
                if hi < lo:
                    return Vector([])
                fn = lambda v: go_max(lo, go_min(hi, v))  # noqa: E731
            elif name == "clamp_min":
                lo = self._scalar(args[1], t, q)
                fn = lambda v: go_max(v, lo)  # noqa: E731
            else:
                hi = self._scalar(args[1], t, q)
                fn = lambda v: go_min(v, hi)  # noqa: E731
            return unique_vector([Sample(drop_name(s.labels), fn(s.value)) for s in vec.samples])
        if name in ("sort", "sort_desc"):
            desc = name == "sort_desc"
            samples = sorted(
                vec.samples,
                key=lambda s: (not math.isnan(s.value), -s.value if desc else s.value),
            )
            return Vector(samples)
        if name == "label_replace":
            dst, repl, src, pattern = (self._string(a, t, q) for a in args[1:5])
            return functions.label_replace(vec, dst, repl, src, pattern)
        if name == "label_join":
            dst, sep = self._string(args[1], t, q), self._string(args[2], t, q)
            srcs = [self._string(a, t, q) for a in args[3:]]
            return functions.label_join(vec, dst, sep, srcs)
        if name == "histogram_quantile":
            phi = self._scalar(args[0], t, q)
            return histogram_quantile(phi, self._vector(args[1], t, q))
        raise UnsupportedError(f"function {name}()")

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
            return Vector([Sample(absent_labels(arg), 1.0)])
        out = []
        # last_over_time is the one range function that keeps the metric name.
        keep = name == "last_over_time"
        for w in pairs:
            value = range_func(name, w, ref, range_ms, scalar_arg, t)
            if value is not None:
                out.append(Sample(w.labels if keep else drop_name(w.labels), value))
        return unique_vector(out)

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
        return aggregate_vector(node, vec, param)

    def _eval_bin(self, node: Bin, t: int, q: _Query) -> Value:
        lhs = self._eval(node.lhs, t, q)
        rhs = self._eval(node.rhs, t, q)
        return binary_op(node, lhs, rhs)

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


def _by_labels(series: Series) -> Labels:
    return series.labels
