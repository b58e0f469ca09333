"""Binary operators over evaluated operands: ``binary_op(node, lhs, rhs)`` for scalar/scalar,
vector/scalar and vector/vector (``on``/``ignoring``, ``group_left``/``group_right``, ``bool``,
set operators), with Prometheus' many-to-many and duplicate-match errors."""

from __future__ import annotations

import math

from monitoring.rules import gomath
from monitoring.rules.errors import QueryError
from monitoring.rules.expr import ARITH_OPS, COMPARISON_OPS, NAME_DROPPING_OPS, SET_OPS, Bin
from monitoring.rules.gofmt import labels_string
from monitoring.rules.gomath import div, mod
from monitoring.rules.values import Sample, Scalar, Value, Vector, drop_name, unique_vector
from monitoring.tsdb.store import Labels


def arith(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return div(a, b)
    if op == "%":
        return mod(a, b)
    if op == "^":
        return gomath.pow(a, b)
    return math.atan2(a, b)


def compare(op: str, a: float, b: float) -> bool:
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


def _signature(labels: Labels, on: bool, names: list[str]) -> Labels:
    if on:
        return tuple(p for p in labels if p[0] in names)
    return tuple(p for p in labels if p[0] not in names and p[0] != "__name__")


def vector_scalar(node: Bin, vec: Vector, scalar: float, swap: bool) -> Vector:
    op = node.op
    out = []
    for s in vec.samples:
        lv, rv = (scalar, s.value) if swap else (s.value, scalar)
        if op in COMPARISON_OPS:
            keep = compare(op, lv, rv)
            value = s.value
            if node.return_bool:
                value, keep = (1.0 if keep else 0.0), True
            if keep:
                labels = drop_name(s.labels) if node.return_bool else s.labels
                out.append(Sample(labels, value))
        else:
            labels = drop_name(s.labels) if op in NAME_DROPPING_OPS else s.labels
            out.append(Sample(labels, arith(op, lv, rv)))
    return unique_vector(out) if op in ARITH_OPS or node.return_bool else Vector(out)


def vector_binop(node: Bin, lhs: Vector, rhs: Vector) -> Vector:
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
                f"found duplicate series for the match group {labels_string(sig)} on the {side} "
                f"hand-side of the operation: [{labels_string(rs.labels)}, "
                f"{labels_string(right[sig].labels)}];many-to-many matching not allowed: "
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
            keep = compare(op, vl, vr)
            value = vl
        else:
            keep, value = True, arith(op, vl, vr)
        if node.return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        metric = _result_metric(ls.labels, rs.labels, node)
        if node.return_bool:
            metric = drop_name(metric)
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
    return unique_vector(out)


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


def set_op(node: Bin, lhs: Vector, rhs: Vector) -> Vector:
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


def binary_op(node: Bin, lhs: Value, rhs: Value) -> Value:
    """``node.op`` applied to its evaluated operands."""
    op = node.op
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        if op in COMPARISON_OPS:
            return Scalar(1.0 if compare(op, lhs.value, rhs.value) else 0.0)
        return Scalar(arith(op, lhs.value, rhs.value))
    if isinstance(lhs, Vector) and isinstance(rhs, Vector):
        if op in SET_OPS:
            return set_op(node, lhs, rhs)
        return vector_binop(node, lhs, rhs)
    if isinstance(lhs, Vector):
        return vector_scalar(node, lhs, rhs.value, swap=False)
    return vector_scalar(node, rhs, lhs.value, swap=True)
