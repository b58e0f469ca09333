"""Rule unit tests in promtool's own format, run as ``promtool test rules FILE…`` (2.42) does.

Public surface (stable):

- ``main(argv) -> int``: ``argv`` is the list of test files; prints ``Unit Testing:  FILE`` then
  ``SUCCESS`` or ``FAILED:`` with each failure (expected and actual, promtool's layout) and
  returns 0 only if every test in every file passed.
- ``run_test_file(path) -> list[str]``: the failures of one file (empty when it passes).

The format: ``rule_files`` (relative to the test file, globs allowed), ``evaluation_interval``
(default 1m), ``group_eval_order``, ``tests`` with ``name``, ``interval``, ``external_labels``,
``external_url``, ``input_series`` (``series`` + ``values`` in the expanding notation
``1+2x10``, ``5x3``, ``_``, ``_x3``, ``stale``), ``alert_rule_test`` (``eval_time``,
``alertname``, ``exp_alerts`` with ``exp_labels``/``exp_annotations``; only firing alerts are
compared) and ``promql_expr_test`` (``expr``, ``eval_time``, ``exp_samples`` with ``labels``
and ``value``, compared exactly).  As in promtool, rules are evaluated every
``evaluation_interval`` from 0 and only samples up to the current evaluation are visible.
A field left out (or null) takes Go's zero value, as promtool decodes it: no ``labels`` is the
empty label set (a scalar result), no ``value`` is 0, no ``interval`` loads every value at 0s
(not at ``evaluation_interval``), an empty list item is an item with every field zero.
"""

from __future__ import annotations

import ast
import glob
import math
import os
import re
import sys
from dataclasses import dataclass

import yaml

from monitoring.configfile import ConfigError
from monitoring.rules.alerting import FIRING, AlertingRule
from monitoring.rules.engine import Engine
from monitoring.rules.errors import QueryError
from monitoring.rules.gofmt import (
    format_go_duration,
    format_go_e,
    go_float,
    go_quote,
    go_time_duration,
    labels_string,
    parse_duration,
)
from monitoring.rules.group import RuleGroup
from monitoring.rules.loader import load_rule_files
from monitoring.rules.series_syntax import series_syntax_error
from monitoring.rules.values import Scalar, Vector
from monitoring.tsdb.store import STALE_NAN, Labels, SampleStore, labels_from

TOP_KEYS = {"rule_files", "evaluation_interval", "group_eval_order", "tests"}
GROUP_KEYS = {
    "name",
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
}


class TestFileError(Exception):
    pass


class _TestFileLoader(yaml.BaseLoader):
    """Every scalar as its text, as Go's yaml gives string fields ("yes" stays "yes"), except a
    plain null (`null`, `~`, nothing), which Go decodes to the field's zero value."""


_TestFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_TestFileLoader.add_constructor("tag:yaml.org,2002:null", lambda loader, node: None)


def _text(value: object) -> str:
    """A string field's value: null is Go's zero value, the empty string."""
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------ parsing

_METRIC_RE = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{.*\})?\s*$", re.DOTALL)
_PAIR_RE = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')\s*'
)


def parse_metric(text: str) -> Labels:
    """A label set written as ``name{a="b"}`` or ``{__name__="x", a="b"}``."""
    m = _METRIC_RE.match(text)
    if not m or not (m.group(1) or m.group(2)):
        raise TestFileError(f"invalid metric {text!r}")
    labels: dict[str, str] = {}
    if m.group(1):
        labels["__name__"] = m.group(1)
    body = (m.group(2) or "{}")[1:-1].strip()
    pos = 0
    while body[pos:].strip():
        pm = _PAIR_RE.match(body, pos)
        if not pm:
            raise TestFileError(f"invalid metric {text!r}")
        labels[pm.group(1)] = ast.literal_eval(pm.group(2))
        pos = pm.end()
        if pos < len(body):
            if body[pos] != ",":
                raise TestFileError(f"invalid metric {text!r}")
            pos += 1
    return labels_from(labels)


# PromQL's number tokens: Inf and NaN in any case, `5.` and `.5` as well as `5.5`, exponents.
_UNSIGNED = r"(?:(?i:inf|nan)|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_NUM = rf"[-+]?{_UNSIGNED}"
_ITEM_RE = re.compile(
    rf"^(?:(?P<blank>_)(?:x(?P<bn>\d+))?|(?P<stale>stale)|(?P<a>{_NUM})(?:(?P<sign>[-+])(?P<b>{_UNSIGNED}))?(?:x(?P<n>\d+))?)$"
)


class SeriesError(TestFileError):
    """A series promtool's PromQL lexer rejects, with its message (printed unindented)."""


MISSING = None


def expand_values(text: str, col: int = 1) -> list[float | None]:
    """promtool's series notation: ``1+2x3`` -> 1 3 5 7, ``5x2`` -> 5 5 5, ``_x2``, ``stale``.
    ``col``: where ``text`` starts in promtool's ``series values`` line, for its messages."""
    message = series_syntax_error(str(text), col)
    if message:
        raise SeriesError(message)
    out: list[float | None] = []
    for found in re.finditer(r"\S+", str(text)):
        item = found.group(0)
        m = _ITEM_RE.match(item)
        if not m:  # series_syntax_error accepted what this reads: a bug here, not in the file
            raise TestFileError(f"invalid series value {item!r} in {text!r}")
        if m.group("blank"):
            out.extend([MISSING] * (int(m.group("bn")) if m.group("bn") else 1))
        elif m.group("stale"):
            out.append(STALE_NAN)
        else:
            start = _num(m.group("a"))
            if m.group("n") is None:
                out.append(start)
                continue
            step = _num(m.group("b")) if m.group("b") else 0.0
            if m.group("sign") == "-":
                step = -step
            value = start
            for _ in range(int(m.group("n")) + 1):
                out.append(value)
                value += step
    return out


def _num(text: str) -> float:
    """A number of a series value as promtool's parser reads it: Go's ParseInt with base 0
    first, so digits with a leading 0 are octal (`010` is 8), else ParseFloat."""
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits.startswith("0") and set(digits) <= set("01234567"):
        value = float(int(digits, 8))
        return -value if text.startswith("-") else value
    return go_float(text)


def _duration(value, what: str) -> float:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise TestFileError(f"{what}: {exc}") from None


def _check_keys(data: dict, allowed: set[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise TestFileError(f"field {key} not found in type {what}")


# ------------------------------------------------------------------------------ running


@dataclass
class _Alert:
    labels: Labels
    annotations: Labels


_LEADING_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|(?i:inf|nan)(?![A-Za-z0-9_:])|\d*\.?\d+(?:[eE][-+]?\d+)?"
)
_LEADING_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?|\{[^}]*\}")


def _series_line(series: str, values: str) -> tuple[str, str] | None:
    """promtool writes each input series as one line, `series values`, trimmed, and parses
    that: a blank line ends the series (those after it are never loaded), and with `series`
    blank the metric is read from the start of `values`."""
    line = f"{series} {values}".strip()
    if not line:
        return None
    if series.strip():
        return series, values
    if line[0] in "+-":
        raise SeriesError(f"1:1: parse error: unexpected <op:{line[0]}> in series values")
    number = _LEADING_NUMBER.match(line)
    if number:
        raise SeriesError(
            f'1:1: parse error: unexpected number "{number.group(0)}" in series values'
        )
    metric = _LEADING_METRIC.match(line)
    end = metric.end() if metric else len(line)
    return line[:end], line[end:]


def _series(group: dict, interval_ms: int) -> list[tuple[Labels, list[tuple[int, float]]]]:
    """The input series; a label set defined twice keeps its last definition, as promtool's
    loader keys definitions by label set."""
    out: dict[Labels, list[tuple[int, float]]] = {}
    for item in group.get("input_series") or []:
        item = item or {}  # `- ` is a series with no fields: a blank line
        if not isinstance(item, dict) or set(item) - {"series", "values"}:
            raise TestFileError(f"invalid input_series item {item!r}")
        line = _series_line(str(item.get("series") or ""), str(item.get("values") or ""))
        if line is None:
            break
        series, values = line
        labels = parse_metric(series)
        points = [
            (i * interval_ms, v)
            for i, v in enumerate(expand_values(values, len(series.strip()) + 2))
            if v is not MISSING
        ]
        out[labels] = points
    return list(out.items())


def _alert_list_string(alerts: list[_Alert]) -> str:
    if not alerts:
        return "[]"

    def one(a: _Alert) -> str:
        return "Labels:" + labels_string(a.labels) + "\nAnnotations:" + labels_string(a.annotations)

    def indent(text: str, prefix: str) -> str:
        return "\n".join(prefix + line if i else line for i, line in enumerate(text.split("\n")))

    parts = [f"{i}:" + indent("\n" + one(a), "  ") for i, a in enumerate(alerts)]
    return "[\n" + ",\n".join(parts) + "\n]"


def _indent_lines(text: str, prefix: str) -> str:
    lines = text.split("\n")
    return "\n".join([lines[0]] + [prefix + line for line in lines[1:]])


def _run_group(
    tg: dict, eval_interval_s: float, order: dict[str, int], rule_files: list[str]
) -> list[str]:
    _check_keys(tg, GROUP_KEYS, "main.testGroup")
    # promtool 2.42 does not default a group's interval to evaluation_interval: without one,
    # every series value is loaded at 0s (the first wins) and the rules get no default interval.
    interval_s = _duration(tg["interval"], "interval") if tg.get("interval") else 0.0
    name = tg.get("name") or ""
    interval_ms = int(round(interval_s * 1000))
    # promtool loads the series first: a bad one ends the group before the rules are read.
    try:
        series = _series(tg, interval_ms)
    except SeriesError as exc:
        return [str(exc)]
    try:
        groups = load_rule_files(
            rule_files,
            default_interval_s=interval_s,
            external_labels={
                str(k): _text(v) for k, v in (tg.get("external_labels") or {}).items()
            },
            external_url=str(tg.get("external_url") or ""),
        )
    except ConfigError as exc:
        return [f"    {e}" for e in exc.errors]
    groups = [
        g for _, g in sorted(enumerate(groups), key=lambda p: (order.get(p[1].name, 0), p[0]))
    ]

    step_ms = int(round(eval_interval_s * 1000))
    alert_tests = list(tg.get("alert_rule_test") or [])
    expr_tests = list(tg.get("promql_expr_test") or [])
    for t in alert_tests:
        _check_keys(t, {"eval_time", "alertname", "exp_alerts"}, "main.alertTestCase")
        t["_ms"] = int(round(_duration(t.get("eval_time") or 0, "eval_time") * 1000))
        if not t.get("alertname"):
            where = f" (in TestGroup {name})" if name else ""
            return [
                "an item under alert_rule_test misses required attribute alertname at eval_time "
                f"{format_go_duration(t['_ms'])}{where}"
            ]
    for t in expr_tests:
        _check_keys(t, {"expr", "eval_time", "exp_samples"}, "main.promqlTestCase")
        t["_ms"] = int(round(_duration(t.get("eval_time") or 0, "eval_time") * 1000))
    max_t = max([t["_ms"] for t in alert_tests + expr_tests], default=0)

    pending = [(labels, list(points)) for labels, points in series]
    store = SampleStore(retention_seconds=10 * 365 * 86400)
    engine = Engine(store, subquery_step_ms=step_ms)
    errs: list[str] = []
    alert_times = sorted({t["_ms"] for t in alert_tests})
    cur = 0
    ts = 0
    while ts <= max_t:
        _load_until(store, pending, ts)
        eval_errs = []
        for g in groups:
            g.eval(ts, engine, store)
            for r in g.rules:
                if r.last_error is not None:
                    eval_errs.append(
                        f"    rule: {r.name}, time: {go_time_duration(ts)}, err: {r.last_error}"
                    )
        errs.extend(eval_errs)
        if eval_errs:
            return errs
        while cur < len(alert_times) and ts <= alert_times[cur] < ts + step_ms:
            t = alert_times[cur]
            errs.extend(_check_alerts(groups, [a for a in alert_tests if a["_ms"] == t], name))
            cur += 1
        ts += step_ms
    for t in expr_tests:
        errs.extend(_check_expr(engine, t))
    return errs


def _load_until(store: SampleStore, pending: list, ts: int) -> None:
    for labels, points in pending:
        n = 0
        for t, v in points:
            if t > ts:
                break
            store.append(labels, t, v)
            n += 1
        del points[:n]


def _check_alerts(groups: list[RuleGroup], tests: list[dict], test_name: str) -> list[str]:
    wanted = {t["alertname"] for t in tests}
    got: dict[str, list[_Alert]] = {}
    for g in groups:
        for r in g.rules:
            if isinstance(r, AlertingRule) and r.name in wanted:
                got.setdefault(r.name, []).extend(
                    # Annotations keep empty values (alert labels don't), as in promtool.
                    _Alert(a.labels, tuple(sorted(a.annotations.items())))
                    for a in r.active_alerts()
                    if a.state == FIRING
                )
    errs = []
    for t in tests:
        exp = []
        for a in t.get("exp_alerts") or []:
            a = a or {}  # `- ` expects an alert with no labels but alertname
            _check_keys(a, {"exp_labels", "exp_annotations"}, "main.alert")
            lbl = {str(k): _text(v) for k, v in (a.get("exp_labels") or {}).items()}
            lbl["alertname"] = t["alertname"]
            ann = {str(k): _text(v) for k, v in (a.get("exp_annotations") or {}).items()}
            # Empty values stay (promtool's labels.FromMap keeps them), so `a: ""` never
            # matches an alert, whose labels have no empty values.
            exp.append(_Alert(tuple(sorted(lbl.items())), tuple(sorted(ann.items()))))
        mine = got.get(t["alertname"], [])
        key = lambda a: (a.labels, a.annotations)  # noqa: E731
        exp.sort(key=key)
        mine.sort(key=key)
        if [key(a) for a in exp] != [key(a) for a in mine]:
            name = f"    name: {test_name},\n" if test_name else ""
            errs.append(
                f"{name}    alertname: {t['alertname']}, time: {format_go_duration(t['_ms'])}, \n"
                f"        exp:{_indent_lines(_alert_list_string(exp), '            ')}, \n"
                f"        got:{_indent_lines(_alert_list_string(mine), '            ')}"
            )
    return errs


def yaml_float(text: str) -> float:
    """A float field as Go's yaml decodes it: 1, 1.5, 1e3, .inf, -.Inf, .nan, 0x1f."""
    low = text.strip().lower()
    if low in (".inf", "+.inf"):
        return math.inf
    if low == "-.inf":
        return -math.inf
    if low == ".nan":
        return math.nan
    try:
        return float(int(low.replace("_", ""), 0))
    except ValueError:
        return go_float(text.strip())


def _check_expr(engine: Engine, t: dict) -> list[str]:
    expr = _text(t.get("expr"))
    when = format_go_duration(t["_ms"])
    try:
        result = engine.instant(expr, t["_ms"])
        if isinstance(result, Scalar):
            got = [(labels_from({}), result.value)]
        elif isinstance(result, Vector):
            got = [(s.labels, s.value) for s in result.samples]
        else:
            raise QueryError("rule result is not a vector or scalar")
    except (QueryError, ValueError) as exc:
        return [f"    expr: {go_quote(expr)}, time: {when}, err: {exc}"]
    exp = []
    for s in t.get("exp_samples") or []:
        s = s or {}
        _check_keys(s, {"labels", "value"}, "main.sample")
        text = str(s.get("labels") or "")
        try:
            # No labels (omitted or blank) is the empty label set, as promtool's ParseMetric
            # reads it: how a scalar result (`time()`, `scalar(x) * 3`) is expected.
            labels = parse_metric(text) if text.strip() else labels_from({})
        except TestFileError as exc:
            return [
                f"    expr: {go_quote(expr)}, time: {when}, err: labels {go_quote(text)}: {exc}"
            ]
        value = s.get("value") or 0  # omitted or null: 0, as Go decodes it
        try:
            exp.append((labels, yaml_float(str(value))))
        except ValueError:
            return [f"    expr: {go_quote(expr)}, time: {when}, err: invalid value {value!r}"]
    exp.sort(key=lambda p: p[0])
    got.sort(key=lambda p: p[0])
    same = len(exp) == len(got) and all(
        el == gl and ev == gv for (el, ev), (gl, gv) in zip(exp, got, strict=True)
    )
    if same:
        return []

    def fmt(samples: list) -> str:
        if not samples:
            return "nil"
        return ", ".join(f"{labels_string(lbl)} {format_go_e(v, 'E')}" for lbl, v in samples)

    return [
        f"    expr: {go_quote(expr)}, time: {when},\n        exp: {fmt(exp)}\n        got: {fmt(got)}"
    ]


def _resolve(base: str, patterns: list[str]) -> list[str]:
    out = []
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        matches = sorted(glob.glob(full))
        out.extend(matches or [full])
    return out


def run_test_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_TestFileLoader) or {}
        if not isinstance(data, dict):
            raise TestFileError("test file must be a mapping")
        _check_keys(data, TOP_KEYS, "main.unitTestFile")
        eval_interval_s = (
            _duration(data["evaluation_interval"], "evaluation_interval")
            if data.get("evaluation_interval")
            else 60.0
        )
        order: dict[str, int] = {}
        for i, name in enumerate(data.get("group_eval_order") or []):
            if name in order:
                return [f"group name repeated in evaluation order: {name}"]
            order[name] = i
        rule_files = _resolve(os.path.dirname(os.path.abspath(path)), data.get("rule_files") or [])
        errs = []
        for tg in data.get("tests") or []:
            # An empty item (`- `) is a test group with every field zero, as Go decodes it.
            errs.extend(_run_group(tg or {}, eval_interval_s, order, rule_files))
        return errs
    except (OSError, yaml.YAMLError, TestFileError, QueryError) as exc:
        return [f"    {exc}"]


def main(argv: list[str]) -> int:
    failed = False
    for path in argv:
        print("Unit Testing: ", path)
        errs = run_test_file(path)
        if errs:
            failed = True
            print("  FAILED:")
            for err in errs:
                print(err)
                print()
        else:
            print("  SUCCESS")
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
