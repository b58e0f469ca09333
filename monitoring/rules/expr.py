"""PromQL expressions: promql-parser's AST compiled to our own nodes (Prometheus' ``parser``).

- ``parse_expr(text)`` -> the promql-parser AST (``ParseError`` on bad syntax); Prometheus
  2.x's ``holt_winters`` is read as ``double_exponential_smoothing``, its Prometheus 3 name.
- ``compile_expr(text)`` parses, checks and compiles; ``check_supported(ast)`` raises
  ``UnsupportedError(construct)`` naming the first construct the engine does not evaluate.
- The nodes (``NumLit``, ``StrLit``, ``Sel``, ``MatSel``, ``Subquery``, ``Call``, ``Agg``,
  ``Bin``, ``Neg``, ``Paren``) and ``children(node)``; ``as_rule_query(node)`` orders each
  selector's matchers as a rule's query text does.
- What exists: ``SUPPORTED_FUNCS`` (``MATRIX_FUNCS``, ``VECTOR_FUNCS``, ``DATE_FUNCS``, …),
  ``AGG_OPS`` and the operator sets; their implementations are in ``functions``,
  ``aggregations``, ``quantile`` and ``binops``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import promql_parser as pp

from monitoring.rules.errors import ParseError, UnsupportedError
from monitoring.tsdb.store import Matcher


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
            stack.extend(children(n))
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


def children(node: Node) -> list[Node]:
    if isinstance(node, Paren | Neg):
        return [node.expr]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Agg):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, Bin):
        return [node.lhs, node.rhs]
    return []
