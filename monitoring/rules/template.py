"""Go text/template, the subset Prometheus alert labels and annotations use.

Public surface:

- ``parse_template(text, name="") -> Template``; raises ``TemplateError`` on a syntax error, an
  undefined function, or a function we do not support (``query`` and friends).
- ``Template.render(scope) -> str``; ``TemplateError`` when execution fails.
- ``expand_alert_template(text, *, labels, value, external_labels=None, external_url="")``:
  what Prometheus does for an alert's label or annotation: ``$labels``, ``$value``,
  ``$externalLabels``, ``$externalURL`` and ``.Labels``/``.Value``/… are defined; on error the
  result is ``<error expanding template: …>`` as Prometheus writes it.

Supported: ``{{ pipeline }}`` with ``|`` pipes, ``{{- -}}`` trimming, comments, variables and
``:=``/``=``, field access (``$labels.x``, ``.Labels.x``; a missing key is ``""`` as with
Prometheus' ``missingkey=zero``), ``if``/``else if``/``else``/``end``, ``with``, ``range`` over a
map or list, literals, and the functions ``humanize``, ``humanize1024``, ``humanizePercentage``,
``humanizeDuration``, ``humanizeTimestamp``, ``printf``, ``print``, ``println``, ``len``,
``index``, ``eq``/``ne``/``lt``/``le``/``gt``/``ge``, ``and``/``or``/``not``, ``toUpper``,
``toLower``, ``title``, ``match``, ``reReplaceAll``, ``stripPort``, ``safeHtml``.
Floats print as Go's ``%v`` does (``strconv.FormatFloat(v, 'g', -1, 64)``); Go's fmt (``%v``,
``printf``) is ``gofmt``'s.
"""

from __future__ import annotations

import ast as pyast
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from monitoring.rules.functions import go_expand
from monitoring.rules.gofmt import format_go_g_prec, go_print, go_quote, go_sprintf, go_type_name


class TemplateError(Exception):
    pass


# ------------------------------------------------------------------------------------ printing


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TemplateError(f"can't convert {go_print(value)} to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise TemplateError(f'strconv.ParseFloat: parsing "{value}": invalid syntax') from None
    raise TemplateError(f"can't convert {go_print(value)} to float")


def humanize(value: Any) -> str:
    v = _to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return format_go_g_prec(v, 4)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return format_go_g_prec(v, 4) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return format_go_g_prec(v, 4) + prefix


def humanize1024(value: Any) -> str:
    v = _to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return format_go_g_prec(v, 4)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return format_go_g_prec(v, 4) + prefix


def humanize_percentage(value: Any) -> str:
    return format_go_g_prec(_to_float(value) * 100, 4) + "%"


def _go_int64(v: float) -> int:
    # Go's float64 -> int64 conversion on amd64 yields math.MinInt64 when out of range.
    if not -(2**63) <= v < 2**63:
        return -(2**63)
    return int(v)


def _go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _go_rem(a: int, b: int) -> int:
    return a - _go_div(a, b) * b


def humanize_duration(value: Any) -> str:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return format_go_g_prec(v, 4)
    if v == 0:
        return format_go_g_prec(v, 4) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        duration = _go_int64(v)
        seconds = _go_rem(duration, 60)
        minutes = _go_rem(_go_div(duration, 60), 60)
        hours = _go_rem(_go_div(duration, 3600), 24)
        days = _go_div(duration, 86400)
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{format_go_g_prec(v, 4)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{format_go_g_prec(v, 4)}{prefix}s"


def humanize_timestamp(value: Any) -> str:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return format_go_g_prec(v, 4)
    when = dt.datetime.fromtimestamp(v, tz=dt.UTC)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end != -1 else host
    if host.count(":") == 1:
        return host.split(":")[0]
    return host


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


def _go_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TemplateError(f"error parsing regexp: {exc}") from None


def _cmp_values(a: Any, b: Any) -> tuple[Any, Any]:
    def kind(x):
        if isinstance(x, bool):
            return "bool"
        if isinstance(x, int):
            return "int"
        if isinstance(x, float):
            return "float"
        if isinstance(x, str):
            return "string"
        return "other"

    if kind(a) != kind(b) or kind(a) == "other":
        raise TemplateError("incompatible types for comparison")
    return a, b


def _eq(a: Any, *others: Any) -> bool:
    for b in others:
        x, y = _cmp_values(a, b)
        if x == y:
            return True
    return False


def _ordered(op):
    def fn(a: Any, b: Any) -> bool:
        x, y = _cmp_values(a, b)
        if isinstance(x, bool):
            raise TemplateError("invalid type for comparison")
        return op(x, y)

    return fn


def _truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, "")
        elif isinstance(item, list | tuple) and isinstance(key, int):
            if not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        else:
            raise TemplateError(f"can't index item of type {go_type_name(item)}")
    return item


FUNCS: dict[str, Any] = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizePercentage": humanize_percentage,
    "humanizeDuration": humanize_duration,
    "humanizeTimestamp": humanize_timestamp,
    "printf": go_sprintf,
    "print": lambda *a: "".join(go_print(x) for x in a),
    "println": lambda *a: " ".join(go_print(x) for x in a) + "\n",
    "len": lambda x: len(x),
    "index": _index,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    # As Go's text/template: le is lt || eq, gt is !le and ge is !lt, so with a NaN
    # gt and ge are true.
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a < b or a == b),
    "gt": _ordered(lambda a, b: not (a < b or a == b)),
    "ge": _ordered(lambda a, b: not a < b),
    "not": lambda x: not _truth(x),
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: _title(str(s)),
    "match": lambda pattern, text: _go_regex(pattern).search(text) is not None,
    "reReplaceAll": lambda pattern, repl, text: _go_regex(pattern).sub(
        lambda m: go_expand(repl, m), text
    ),
    "stripPort": _strip_port,
    "safeHtml": lambda s: str(s),
}
# Real Prometheus has these; we refuse them when a rule file loads rather than mis-render.
UNSUPPORTED_FUNCS = {
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "tmpl",
    "pathPrefix",
    "externalURL",
    "graphLink",
    "tableLink",
    "parseDuration",
    "toTime",
    "html",
    "js",
    "urlquery",
    "call",
    "slice",
}


@dataclass(frozen=True)
class Dialect:
    """What a template may use: its functions, predefined variables and named templates.

    Prometheus' rule templates (the default) predefine ``$labels`` and friends; Alertmanager's
    notification templates (monitoring/notify/amtemplate.py) have their own functions, only
    ``$``, and ``define``/``template``/``block``."""

    funcs: dict[str, Any]
    unsupported: frozenset[str] = frozenset()
    variables: frozenset[str] = frozenset({"$"})
    named_templates: bool = False
    strict: bool = False  # Go's checks the rule templates never made: string escapes, nil


PROMETHEUS = Dialect(
    FUNCS,
    frozenset(UNSUPPORTED_FUNCS),
    frozenset({"$", "$labels", "$externalLabels", "$externalURL", "$value"}),
)


class SafeHTML(str):
    """Text an HTML rendering writes as is (``safeHtml``; Go's ``template.HTML``)."""

    go_type = "template.HTML"


class GoValue:
    """A Go value with fields and methods that templates reach by name (``.Alerts.Firing``).

    ``go_fields`` name attributes, ``go_methods`` methods (a method wins over a map key, as in
    Go); ``go_type`` is the type Go names in an error."""

    go_type = "struct"
    go_fields: frozenset[str] = frozenset()
    go_methods: frozenset[str] = frozenset()


# ------------------------------------------------------------------------------------ lexing

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int = 0  # offset in the template text


def _tokenize(action: str, offset: int = 0) -> list[Tok]:
    toks = []
    pos = 0
    while pos < len(action):
        m = _TOKEN_RE.match(action, pos)
        if not m:
            raise TemplateError(f"unexpected {action[pos]!r} in command")
        pos = m.end()
        if m.lastgroup != "ws":
            toks.append(Tok(m.lastgroup, m.group(0), offset + m.start()))
    return toks


# ------------------------------------------------------------------------------------ parsing


@dataclass
class Text:
    text: str


@dataclass
class Operand:
    kind: str  # literal, var, field, func, pipe, chain (`(pipe).Field`)
    value: Any
    path: list[str] = field(default_factory=list)
    tok: Tok | None = None  # for a variable or field: where it is written


@dataclass
class Command:
    args: list[Operand]
    pos: int = 0
    text: str = ""  # as Go prints the node in an execution error


@dataclass
class Pipeline:
    decl: list[str]
    commands: list[Command]
    assign: bool = False


@dataclass
class Action:
    pipe: Pipeline


@dataclass
class If:
    branches: list[tuple[Pipeline, list]]
    orelse: list
    kind: str = "if"


@dataclass
class Range:
    pipe: Pipeline
    body: list
    orelse: list


@dataclass
class LoopControl:
    """``{{ break }}`` or ``{{ continue }}`` in a range."""

    kind: str


class _LoopExit(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


@dataclass
class TemplateCall:
    """``{{ template "name" pipeline }}`` (and the call half of ``block``)."""

    name: str
    pipe: Pipeline | None
    pos: int = 0
    text: str = ""


def _split(text: str) -> list[tuple[str, str, int]]:
    """Split into ('text', s, offset) and ('action', s, offset), applying {{- -}} trimming."""
    parts: list[tuple[str, str, int]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start == -1:
            parts.append(("text", text[pos:], pos))
            break
        chunk = text[pos:start]
        inner_start = start + 2
        if (
            text.startswith("- ", inner_start)
            or text.startswith("-\t", inner_start)
            or (text.startswith("-\n", inner_start))
        ):
            chunk = chunk.rstrip()
            inner_start += 1
        parts.append(("text", chunk, pos))
        end = text.find("}}", inner_start)
        if end == -1:
            exc = TemplateError("unclosed action")
            exc.offset = start  # type: ignore[attr-defined]
            raise exc
        inner = text[inner_start:end]
        after = end + 2
        if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
            inner = inner[:-1]
            rest = text[after:]
            after += len(rest) - len(rest.lstrip())
        parts.append(("action", inner, inner_start))
        pos = after
    return parts


def _literal(tok: Tok) -> Any:
    if tok.kind == "str":
        return pyast.literal_eval(tok.text)
    if tok.kind == "raw":
        return tok.text[1:-1]
    if tok.kind == "char":
        return ord(pyast.literal_eval(tok.text))
    text = tok.text.replace("_", "")
    if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|\d+)", text):
        return int(text, 0) if not re.fullmatch(r"[+-]?0\d+", text) else int(text, 8)
    return float(text)


_GO_ESCAPE_RE = re.compile(
    r"\\(?:[abfnrtv\\\"]|x[0-9a-fA-F]{2}|[0-7]{3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)


def _check_go_string(tok: Tok) -> None:
    """Go's strconv.Unquote accepts only its own escapes (`"\\w"` is a syntax error)."""
    if tok.kind == "str" and "\\" in _GO_ESCAPE_RE.sub("", tok.text[1:-1]):
        raise TemplateError("invalid syntax")


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _at_line(exc: TemplateError, text: str, offset: int) -> TemplateError:
    """Remember the line of the first place an error was found (for `file:line` messages)."""
    if getattr(exc, "line", None) is None:
        exc.line = _line(text, offset)  # type: ignore[attr-defined]
    return exc


class _Parser:
    def __init__(self, text: str, dialect: Dialect = PROMETHEUS) -> None:
        self.text = text
        self.dialect = dialect
        try:
            self.parts = _split(text)
        except TemplateError as exc:
            raise _at_line(exc, text, getattr(exc, "offset", 0)) from None
        self.i = 0
        self.vars: list[set[str]] = [set(dialect.variables)]
        self.defines: dict[str, list] = {}
        self.range_depth = 0

    def parse_list(self, stops: tuple[str, ...]) -> tuple[list, str | None, list[Tok]]:
        nodes: list = []
        while self.i < len(self.parts):
            kind, body, offset = self.parts[self.i]
            self.i += 1
            if kind == "text":
                if body:
                    nodes.append(Text(body))
                continue
            try:
                stop = self.parse_action(body, offset, stops, nodes)
            except TemplateError as exc:
                raise _at_line(exc, self.text, offset) from None
            if stop is not None:
                return nodes, stop[0], stop[1]
        if stops:
            raise _at_line(TemplateError("unexpected EOF"), self.text, len(self.text))
        return nodes, None, []

    def parse_action(
        self, body: str, offset: int, stops: tuple[str, ...], nodes: list
    ) -> tuple[str, list[Tok]] | None:
        """Parse one action into `nodes`; an `end`/`else` it may stop at is returned."""
        stripped = body.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError("unclosed comment")
            return None
        toks = _tokenize(body, offset)
        if not toks:
            raise TemplateError("missing value for command")
        head = toks[0]
        if head.kind == "ident" and head.text in ("end", "else"):
            if head.text not in stops:
                raise TemplateError(f"unexpected {{{{{head.text}}}}}")
            return head.text, toks[1:]
        named = ("define", "template", "block")
        if head.kind == "ident" and head.text in ("if", "with"):
            nodes.append(self.parse_if(head.text, toks[1:]))
        elif head.kind == "ident" and head.text == "range":
            nodes.append(self.parse_range(toks[1:]))
        elif head.kind == "ident" and head.text in ("break", "continue") and self.dialect.strict:
            if not self.range_depth:
                raise TemplateError(f"{{{{{head.text}}}}} outside {{{{range}}}}")
            if len(toks) > 1:
                raise TemplateError(f"unexpected {toks[1].text!r} in {{{{{head.text}}}}}")
            nodes.append(LoopControl(head.text))
        elif head.kind == "ident" and head.text in named and self.dialect.named_templates:
            self.parse_named(head.text, toks, stops, nodes, body.strip())
        elif head.kind == "ident" and head.text in (*named, "break"):
            raise TemplateError(f"unsupported template action {head.text}")
        else:
            nodes.append(Action(self.parse_pipeline(toks)))
        return None

    def parse_named(
        self, kind: str, toks: list[Tok], stops: tuple[str, ...], nodes: list, text: str
    ) -> None:
        """`define`, `template` and `block`: as Go, a define only at the top level, the name a
        string constant; `block` is a define and a template call in one."""
        if len(toks) < 2 or toks[1].kind not in ("str", "raw"):
            raise TemplateError(
                f"unexpected {toks[1].text if len(toks) > 1 else 'end'!r} in {kind} clause"
            )
        name = _literal(toks[1])
        rest = toks[2:]
        if kind == "define" and rest:
            raise TemplateError(f"unexpected {rest[0].text!r} in define clause")
        if kind == "block" and not rest:
            raise TemplateError("missing value for block clause")
        if kind == "define" and stops:
            raise TemplateError("unexpected <define> in command")
        if kind in ("define", "block"):
            outer, self.vars = self.vars, [{"$"}]
            depth, self.range_depth = self.range_depth, 0  # a define is not in the range
            body, _, _ = self.parse_list(("end",))
            self.vars, self.range_depth = outer, depth
            if name in self.defines and self.defines[name] and body:
                raise TemplateError(f"template: multiple definition of template {name!r}")
            self.defines[name] = body
        if kind in ("template", "block"):
            pipe = self.parse_pipeline(rest) if rest else None
            nodes.append(TemplateCall(name, pipe, toks[0].pos, "{{" + text + "}}"))

    def parse_if(self, kind: str, toks: list[Tok]) -> If:
        branches = []
        # As Go: a variable an if/with pipeline declares lives until its {{end}} (the rule
        # templates keep their older, wider scope).
        strict = self.dialect.strict
        if strict:
            self.vars.append(set())
        pipe = self.parse_pipeline(toks)
        self.vars.append(set())
        body, stop, rest = self.parse_list(("end", "else"))
        self.vars.pop()
        branches.append((pipe, body))
        orelse: list = []
        while stop == "else":
            if rest and rest[0].kind == "ident" and rest[0].text == kind:
                pipe = self.parse_pipeline(rest[1:])
                self.vars.append(set())
                body, stop, rest = self.parse_list(("end", "else"))
                self.vars.pop()
                branches.append((pipe, body))
                continue
            self.vars.append(set())
            orelse, stop, rest = self.parse_list(("end",))
            self.vars.pop()
        if strict:
            self.vars.pop()
        return If(branches, orelse, kind)

    def parse_range(self, toks: list[Tok]) -> Range:
        self.vars.append(set())
        pipe = self.parse_pipeline(toks, allow_two=True)
        self.range_depth += 1
        body, stop, _ = self.parse_list(("end", "else"))
        self.range_depth -= 1
        orelse: list = []
        if stop == "else":
            orelse, _, _ = self.parse_list(("end",))
        self.vars.pop()
        return Range(pipe, body, orelse)

    def parse_pipeline(self, toks: list[Tok], allow_two: bool = False) -> Pipeline:
        if self.dialect.strict and len(toks) > 1 and toks[-1].kind == "pipe":
            toks = toks[:-1]  # Go (as Alertmanager 0.25 is built) accepts `{{ .x | }}`
        decl: list[str] = []
        assign = False
        # "$x :=" or "$k, $v :="
        j = 0
        names = []
        while j < len(toks) and toks[j].kind == "var" and "." not in toks[j].text:
            names.append(toks[j].text)
            if j + 1 < len(toks) and toks[j + 1].kind == "comma" and allow_two:
                j += 2
                continue
            break
        if names and j + 1 < len(toks) and toks[j + 1].kind in ("decl", "assign"):
            assign = toks[j + 1].kind == "assign"
            decl = names
            toks = toks[j + 2 :]
            for name in decl:
                if assign and not any(name in scope for scope in self.vars):
                    raise TemplateError(f"undefined variable: {name}")
                self.vars[-1].add(name)
        commands: list[Command] = []
        current: list[Operand] = []
        first = 0
        k = 0
        while k < len(toks):
            tok = toks[k]
            if tok.kind == "pipe":
                if not current:
                    raise TemplateError("missing command")
                commands.append(_command_node(current, toks[first:k]))
                current = []
                k += 1
                first = k
                continue
            operand, k = self.parse_operand(toks, k)
            current.append(operand)
        if not current:
            raise TemplateError("missing value for command")
        commands.append(_command_node(current, toks[first:k]))
        return Pipeline(decl, commands, assign)

    def parse_operand(self, toks: list[Tok], k: int) -> tuple[Operand, int]:
        tok = toks[k]
        if tok.kind == "lparen":
            depth = 1
            j = k + 1
            while j < len(toks) and depth:
                if toks[j].kind == "lparen":
                    depth += 1
                elif toks[j].kind == "rparen":
                    depth -= 1
                j += 1
            if depth:
                raise TemplateError("unclosed left paren")
            pipe = self.parse_pipeline(toks[k + 1 : j - 1])
            after = toks[j] if j < len(toks) else None
            if after and after.kind == "field" and after.pos == toks[j - 1].pos + 1:
                # `(pipeline).Field.Method`: a chain on the pipeline's value, as Go's.
                path = [p for p in after.text.split(".") if p]
                return Operand("chain", pipe, path, after), j + 1
            return Operand("pipe", pipe), j
        if tok.kind in ("str", "raw", "num", "char"):
            if self.dialect.strict:
                _check_go_string(tok)
            return Operand("literal", _literal(tok)), k + 1
        if tok.kind == "var":
            name, *path = tok.text.split(".")
            if not any(name in scope for scope in self.vars):
                raise TemplateError(f'undefined variable "{name}"')
            return Operand("var", name, path, tok), k + 1
        if tok.kind == "field":
            path = [p for p in tok.text.split(".") if p]
            return Operand("field", None, path, tok), k + 1
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return Operand("literal", tok.text == "true"), k + 1
            if tok.text == "nil":
                return Operand("literal", None), k + 1
            if tok.text in ("and", "or"):
                return Operand("func", tok.text), k + 1
            if tok.text in self.dialect.unsupported:
                raise TemplateError(f'function "{tok.text}" is not supported by this engine')
            if tok.text not in self.dialect.funcs:
                raise TemplateError(f'function "{tok.text}" not defined')
            return Operand("func", tok.text), k + 1
        raise TemplateError(f"unexpected {tok.text!r} in operand")


def _command_node(args: list[Operand], toks: list[Tok]) -> Command:
    text = " ".join(t.text for t in toks).replace("( ", "(").replace(" )", ")")
    return Command(args, toks[0].pos if toks else 0, text)


class ExecError(TemplateError):
    """An error while executing, at a command: Go reports its position and text."""

    def __init__(self, pos: int, node: str, message: str) -> None:
        super().__init__(message)
        self.pos, self.node, self.message = pos, node, message


# ------------------------------------------------------------------------------------ executing


class Template:
    def __init__(self, text: str, name: str = "", dialect: Dialect = PROMETHEUS) -> None:
        self.name = name
        self.dialect = dialect
        parser = _Parser(text, dialect)
        self.nodes, _, _ = parser.parse_list(())
        self.defines: dict[str, list] = parser.defines  # `{{ define "x" }}`s of this text

    def render(
        self,
        scope: dict[str, Any],
        dot: Any = None,
        *,
        templates: dict[str, list] | None = None,
        escape: Any = None,
    ) -> str:
        """`templates`: named templates `{{ template }}` may call besides this text's own
        defines; `escape`: an HTML context (notify/htmlescape.py) that sees the template's
        text (`escape.text(s)`, what it returns is written) and escapes each printed value
        (`escape.value(value, printed)`)."""
        run = _Exec(self.dialect, {**(templates or {}), **self.defines}, escape)
        out: list[str] = []
        try:
            run.nodes(self.nodes, [dict(scope)], dot, out)
        except RecursionError:
            raise TemplateError("exceeded maximum template depth") from None
        return "".join(out)


MAX_TEMPLATE_DEPTH = 100  # nested {{ template }} calls (Go allows more; Python's stack less)


class _Exec:
    """One execution: the functions, the named templates and the output escaping."""

    def __init__(self, dialect: Dialect, templates: dict[str, list], escape: Any) -> None:
        self.funcs = dialect.funcs
        self.strict = dialect.strict
        self.templates = templates
        self.escape = escape
        self.depth = 0

    def nodes(self, nodes: list, scopes: list[dict], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text if self.escape is None else self.escape.text(node.text))
            elif isinstance(node, Action):
                value = self._pipeline(node.pipe, scopes, dot)
                if not node.pipe.decl:
                    text = go_print(value)
                    if self.escape is not None:
                        text = self.escape.value(value, text)
                    out.append(text)
            elif isinstance(node, If):
                depth = len(scopes)
                scopes.append({})  # what the pipelines declare, until {{end}}
                try:
                    for pipe, body in node.branches:
                        value = self._pipeline(pipe, scopes, dot)
                        if _truth(value):
                            with_dot = value if node.kind == "with" else dot
                            self.nodes(body, [*scopes, {}], with_dot, out)
                            break
                    else:
                        self.nodes(node.orelse, [*scopes, {}], dot, out)
                finally:
                    del scopes[depth:]
            elif isinstance(node, Range):
                self._range(node, scopes, dot, out)
            elif isinstance(node, TemplateCall):
                self._template(node, scopes, dot, out)
            elif isinstance(node, LoopControl):
                raise _LoopExit(node.kind)

    def _template(self, node: TemplateCall, scopes: list[dict], dot: Any, out: list[str]) -> None:
        body = self.templates.get(node.name)
        if body is None:
            raise ExecError(node.pos, node.text, f"template {go_quote(node.name)} not defined")
        value = self._pipeline(node.pipe, scopes, dot) if node.pipe else None
        if self.depth >= MAX_TEMPLATE_DEPTH:
            raise ExecError(node.pos, node.text, "exceeded maximum template depth")
        self.depth += 1
        try:
            # As Go: the called template sees only `$`, set to its dot.
            self.nodes(body, [{"$": value}], value, out)
        finally:
            self.depth -= 1

    def _range(self, node: Range, scopes: list[dict], dot: Any, out: list[str]) -> None:
        pipe = Pipeline([], node.pipe.commands)
        value = self._pipeline(pipe, scopes, dot)
        items = (
            sorted(value.items())
            if isinstance(value, dict)
            else list(enumerate(value or []))
            if isinstance(value, list | tuple)
            else None
        )
        if items is None:
            raise TemplateError(f"range can't iterate over {go_print(value)}")
        if not items:
            self.nodes(node.orelse, scopes, dot, out)
            return
        for key, item in items:
            scope: dict[str, Any] = {}
            names = node.pipe.decl
            if len(names) == 1:
                scope[names[0]] = item
            elif len(names) == 2:
                scope[names[0]], scope[names[1]] = key, item
            depth = len(scopes)
            scopes.append(scope)
            try:
                self.nodes(node.body, scopes, item, out)
            except _LoopExit as exit_:
                if exit_.kind == "break":
                    break
            finally:
                del scopes[depth:]  # also the scopes of the ifs a break or continue left

    def _lookup(self, name: str, scopes: list[dict]) -> Any:
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f"undefined variable {name}")

    def _pipeline(self, pipe: Pipeline, scopes: list[dict], dot: Any) -> Any:
        value: Any = _NOTHING
        for cmd in pipe.commands:
            value = self._command(cmd, scopes, dot, value)
        if pipe.decl:
            if pipe.assign:
                for scope in reversed(scopes):
                    if pipe.decl[0] in scope:
                        scope[pipe.decl[0]] = value
                        break
            else:
                scopes[-1][pipe.decl[0]] = value
        return value

    def _operand(self, op: Operand, scopes: list[dict], dot: Any, args: list | None = None) -> Any:
        """A value; `args` (a command's arguments) go to the method a field chain ends in."""
        if op.kind == "literal":
            return op.value
        if op.kind == "pipe":
            return self._pipeline(op.value, scopes, dot)
        if op.kind == "chain":
            base = self._pipeline(op.value, scopes, dot)
        else:
            base = self._lookup(op.value, scopes) if op.kind == "var" else dot
        # Go points at the field that failed: after "$name" and the fields before it.
        offset = len(op.value) if op.kind == "var" else 0
        for i, part in enumerate(op.path):
            last = i == len(op.path) - 1
            try:
                base = _field(base, part, args if last else None)
            except _NotAMethod:
                raise
            except TemplateError as exc:
                raise ExecError(op.tok.pos + offset, op.tok.text, str(exc)) from None
            offset += len(part) + 1
        return base

    def _command(self, cmd: Command, scopes: list[dict], dot: Any, piped: Any) -> Any:
        try:
            return self._call(cmd, scopes, dot, piped)
        except ExecError:
            raise
        except TemplateError as exc:
            raise ExecError(cmd.pos, cmd.text, str(exc)) from None

    def _call(self, cmd: Command, scopes: list[dict], dot: Any, piped: Any) -> Any:
        first = cmd.args[0]
        if first.kind == "func" and first.value in ("and", "or") and self.strict:
            return self._and_or(first.value, cmd, scopes, dot, piped)
        if first.kind == "func":
            args = [self._operand(a, scopes, dot) for a in cmd.args[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            name = first.value
            if name == "and":
                result = args[0] if args else None
                for a in args:
                    result = a
                    if not _truth(a):
                        break
                return result
            if name == "or":
                result = args[0] if args else None
                for a in args:
                    result = a
                    if _truth(a):
                        break
                return result
            try:
                return self.funcs[name](*args)
            except TemplateError as exc:
                raise TemplateError(f"error calling {name}: {exc}") from None
            except TypeError:
                raise TemplateError(f"wrong number of args for {name}") from None
        has_args = len(cmd.args) > 1 or piped is not _NOTHING
        if has_args and first.kind in ("field", "var", "chain") and first.path:
            # A field chain ending in a method takes the arguments (`.Labels.Remove $names`).
            args = [self._operand(a, scopes, dot) for a in cmd.args[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            try:
                return self._operand(first, scopes, dot, args)
            except _NotAMethod:
                pass
        if has_args:
            raise TemplateError(f"can't give argument to non-function {go_print(first.value)}")
        if self.strict and first.kind == "literal" and first.value is None:
            raise TemplateError("nil is not a command")
        return self._operand(first, scopes, dot)

    def _and_or(self, name: str, cmd: Command, scopes: list[dict], dot: Any, piped: Any) -> Any:
        """Go's `and`/`or` since 1.18: arguments evaluated only until the result is known."""
        if len(cmd.args) < 2 and piped is _NOTHING:
            raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
        result = None
        operands = [*cmd.args[1:], None] if piped is not _NOTHING else cmd.args[1:]
        for op in operands:
            result = piped if op is None else self._operand(op, scopes, dot)
            if _truth(result) != (name == "and"):
                break
        return result


class _NotAMethod(Exception):
    """Arguments given to a field chain that does not end in a method."""


def _field(base: Any, name: str, args: list | None) -> Any:
    """`base.name` as Go's text/template resolves it: a method first, then a struct field,
    then a map key (a missing key is the zero value, ``missingkey=zero``)."""
    if name in getattr(base, "go_methods", ()):
        method = getattr(base, name)
        try:
            return method(*(args or []))
        except TypeError:
            got = len(args or [])
            raise TemplateError(f"wrong number of args for {name}: got {got}") from None
    if args:
        raise _NotAMethod(name)
    if name in getattr(base, "go_fields", ()):
        return getattr(base, name)
    if isinstance(base, dict):
        return base.get(name, "")
    kind = getattr(base, "go_type", None) or go_type_name(base)
    raise TemplateError(f"can't evaluate field {name} in type {kind}")


_NOTHING = object()


@lru_cache(maxsize=2048)
def parse_template(text: str, name: str = "") -> Template:
    """Parsed once per text: a rule's templates are expanded for every alert at every eval."""
    try:
        return Template(text, name)
    except TemplateError as exc:
        raise TemplateError(f"template: {name}: {exc}") from None
    except (ValueError, SyntaxError) as exc:
        raise TemplateError(f"template: {name}: {exc}") from None


def expand_alert_template(
    text: str,
    *,
    labels: dict[str, str],
    value: float,
    external_labels: dict[str, str] | None = None,
    external_url: str = "",
    name: str = "",
) -> str:
    if "{{" not in text:
        return text
    ext = dict(external_labels or {})
    scope = {
        "$labels": dict(labels),
        "$externalLabels": ext,
        "$externalURL": external_url,
        "$value": float(value),
    }
    dot = {
        "Labels": dict(labels),
        "ExternalLabels": ext,
        "ExternalURL": external_url,
        "Value": float(value),
    }
    scope["$"] = dot
    try:
        template = parse_template(text, name)
    except TemplateError as exc:
        return f"<error expanding template: error parsing template {name}: {exc}>"
    try:
        return template.render(scope, dot)
    except ExecError as exc:
        # Prometheus runs the text after its variable definitions: positions shift by them.
        full = _ALERT_DEFS + text
        pos = len(_ALERT_DEFS) + exc.pos
        line = 1 + full.count("\n", 0, pos)
        col = pos - (full.rfind("\n", 0, pos) + 1) if line > 1 else pos
        return (
            f"<error expanding template: error executing template {name}: template: "
            f'{name}:{line}:{col}: executing "{name}" at <{exc.node}>: {exc.message}>'
        )
    except TemplateError as exc:
        return f"<error expanding template: error executing template {name}: {exc}>"


_ALERT_DEFS = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
