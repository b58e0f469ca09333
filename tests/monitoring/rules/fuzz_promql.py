"""Differential fuzzer: our rule-test runner against promtool 2.42 on random test files.

    python -m tests.monitoring.rules.fuzz_promql --seed 1 --cases 300 [--keep DIR] [-v]

Each generated file has random ``input_series`` (counters with resets, gauges, gaps ``_``,
``stale`` markers, ``x`` repeats, classic histograms with ``le`` buckets) and a rules file of
recording and alerting rules (``for``, templated labels and annotations); its tests are
``promql_expr_test`` cases over random expressions from a typed PromQL grammar and
``alert_rule_test`` cases, mostly with deliberately wrong expectations ("spoiled", as in
test_conformance.py) so both runners print what they computed.  Alert rules may have
``keep_firing_for``.  The files also take the shapes promtool accepts with fields left out or
null (``shape_*`` below): no ``labels`` on an expected sample (scalar results), no or empty
expectations, no ``interval``, ``eval_time``, ``evaluation_interval`` or ``name``, empty list
items, an input series defined twice or left blank; and a group whose series values are random
pieces of the notation, valid or not (promtool's syntax errors, word for word).  The two outputs must be identical,
failure block by failure block.

promtool loads input series in map order, so the order it sums series in (and topk's choice
among ties, the order of the two series named in a many-to-many error) changes from run to
run; a block that differs is therefore retried with promtool a few times and accepted if any
run printed exactly our block.

Exit status 1 if any file disagreed; ``--keep DIR`` keeps each disagreeing file (test, rules,
both outputs) for a look.  ``fuzz(seed, cases)`` is the same from Python (the pytest guard).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitoring.rules import unittest as rules_unittest

CASES_PER_FILE = 8
PROMTOOL_RETRIES = 6

JOBS = ["a", "b", "c"]
INSTS = ["1", "2", "3"]
BUCKETS = ["0.1", "0.5", "1", "2.5", "+Inf"]


# ------------------------------------------------------------------------------ series


def _num(rng: random.Random, small: bool = False) -> str:
    r = rng.random()
    if r < 0.6:
        return str(rng.randint(0, 10 if small else 100))
    if r < 0.8:
        return str(rng.randint(0, 40) / 4)  # exact binary fractions
    if r < 0.9:
        return str(-rng.randint(1, 20))
    return rng.choice(
        ["0.1", "0.3", "1.7", "1e3", "2.5e-3", "33.3", "NaN", "Inf", "-Inf", "1e21", "-0.000001"]
        + ["010", "07", "08", "INF", "nan", "5.", ".5"]  # octal, any-case Inf/NaN (promtool)
    )


def _counter_values(rng: random.Random, steps: int) -> str:
    parts = []
    v = rng.randint(0, 20)
    n = 0
    while n < steps:
        r = rng.random()
        if r < 0.35:
            k = rng.randint(1, 6)
            inc = rng.choice([1, 2, 3, 5, 10, 0.5, 0])
            parts.append(f"{v}+{inc}x{k}")
            v = v + inc * k
            n += k + 1
            v += inc
        elif r < 0.45:
            v = rng.randint(0, 3)  # reset
            parts.append(str(v))
            n += 1
        elif r < 0.55:
            parts.append("_" if rng.random() < 0.6 else f"_x{rng.randint(1, 3)}")
            n += 1
        elif r < 0.6:
            parts.append("stale")
            n += 1
        else:
            v += rng.choice([0, 1, 2, 4, 7, 0.25, 1.5])
            parts.append(str(v))
            n += 1
    return " ".join(parts)


def _gauge_values(rng: random.Random, steps: int) -> str:
    parts = []
    n = 0
    while n < steps:
        r = rng.random()
        if r < 0.15:
            k = rng.randint(1, 5)
            parts.append(f"{_num(rng)}x{k}")
            n += k + 1
        elif r < 0.22:
            a = rng.randint(-5, 20)
            parts.append(
                f"{a}{rng.choice(['+', '-'])}{rng.choice([1, 2, 0.5])}x{rng.randint(1, 4)}"
            )
            n += 3
        elif r < 0.3:
            parts.append("_")
            n += 1
        elif r < 0.34:
            parts.append("stale")
            n += 1
        else:
            parts.append(_num(rng))
            n += 1
    return " ".join(parts)


def _histogram(rng: random.Random, job: str, steps: int) -> list[dict]:
    counts = [0] * len(BUCKETS)
    rows: list[list[str]] = [[] for _ in BUCKETS]
    for step in range(steps):
        if step and rng.random() < 0.06:
            counts = [0] * len(BUCKETS)  # reset
        adds = [rng.randint(0, 4) for _ in BUCKETS]
        running = 0
        for i, a in enumerate(adds):
            running += a
            counts[i] += running
        missing = rng.random() < 0.05
        for i in range(len(BUCKETS)):
            rows[i].append("_" if missing else str(counts[i]))
    return [
        {"series": f'req_seconds_bucket{{job="{job}", le="{le}"}}', "values": " ".join(rows[i])}
        for i, le in enumerate(BUCKETS)
    ]


def gen_series(rng: random.Random, steps: int) -> list[dict]:
    out = []
    for job in JOBS:
        for inst in INSTS:
            if rng.random() < 0.6:
                out.append(
                    {
                        "series": f'http_requests_total{{job="{job}", instance="{inst}"}}',
                        "values": _counter_values(rng, steps),
                    }
                )
            if rng.random() < 0.5:
                code = rng.choice(["200", "500"])
                out.append(
                    {
                        "series": f'errors_total{{job="{job}", instance="{inst}", code="{code}"}}',
                        "values": _counter_values(rng, steps),
                    }
                )
            if rng.random() < 0.5:
                out.append(
                    {
                        "series": f'temperature{{job="{job}", instance="{inst}"}}',
                        "values": _gauge_values(rng, steps),
                    }
                )
        if rng.random() < 0.7:
            out.append(
                {
                    "series": f'job_info{{job="{job}", team="{rng.choice(["x", "y"])}", version="1.{rng.randint(0, 2)}"}}',
                    "values": f"1x{steps}" if rng.random() < 0.8 else _gauge_values(rng, steps),
                }
            )
        if rng.random() < 0.5:
            out.extend(_histogram(rng, job, steps))
    if rng.random() < 0.3:
        out.append({"series": "up", "values": _gauge_values(rng, steps)})
    if rng.random() < 0.3:
        out.append(
            {"series": '{__name__="queue_size", queue="q:1"}', "values": _gauge_values(rng, steps)}
        )
    return out


# ------------------------------------------------------------------------------ expressions

METRICS = ["http_requests_total", "errors_total", "temperature", "job_info", "req_seconds_bucket"]
COUNTERS = ["http_requests_total", "errors_total", "req_seconds_bucket"]
LABELS = ["job", "instance", "code", "team", "version", "le"]
RANGES = ["1m", "2m", "3m", "5m", "10m", "90s"]


@dataclass
class Gen:
    rng: random.Random
    records: list[str] = field(default_factory=list)

    def pick(self, *items):
        return self.rng.choice(items)

    def matcher(self) -> str:
        r = self.rng.random()
        label = self.pick("job", "job", "instance", "code", "le")
        if label == "job":
            val = self.pick(*JOBS, "zz")
        elif label == "instance":
            val = self.pick(*INSTS)
        elif label == "code":
            val = self.pick("200", "500")
        else:
            val = self.pick(*BUCKETS)
        if r < 0.4:
            return f'{label}="{val}"'
        if r < 0.6:
            return f'{label}!="{val}"'
        val = val.replace("+", "\\\\+").replace(".", "\\\\.")  # a regex; \\ in PromQL
        if r < 0.8:
            alt = self.pick(*JOBS, *INSTS, ".*", "")
            return f'{label}=~"{val}|{alt}"'
        return f'{label}!~"{val}.*"'

    def selector(self, counter: bool = False) -> str:
        if self.records and self.rng.random() < 0.1 and not counter:
            name = self.pick(*self.records)
        else:
            name = self.pick(*(COUNTERS if counter else METRICS))
        n = self.rng.choice([0, 0, 1, 1, 2])
        body = ", ".join(self.matcher() for _ in range(n))
        text = f"{name}{{{body}}}" if body else name
        if self.rng.random() < 0.1:
            text = f'{{__name__="{name}"{", " + body if body else ""}}}'
        return text

    def offset(self) -> str:
        return f" offset {self.pick('1m', '2m', '5m', '30s')}" if self.rng.random() < 0.15 else ""

    def range_expr(self, depth: int, counter: bool = False) -> str:
        if depth > 0 and self.rng.random() < 0.15:
            step = self.pick("", "1m", "30s", "2m")
            return (
                f"{self.paren_vec(depth - 1)}[{self.pick('5m', '3m', '10m')}:{step}]{self.offset()}"
            )
        return f"{self.selector(counter)}[{self.pick(*RANGES)}]{self.offset()}"

    def paren_vec(self, depth: int) -> str:
        text = self.vector(depth)
        return text if text.replace("_", "").replace("{", "").isalnum() else f"({text})"

    def scalar(self, depth: int) -> str:
        r = self.rng.random()
        if depth <= 0 or r < 0.55:
            return self.pick("0", "1", "2", "0.5", "3", "10", "100", "-1", "0.25", "1e3")
        if r < 0.65:
            return "time()"
        if r < 0.8:
            return f"scalar({self.vector(depth - 1)})"
        if r < 0.9:
            return f"({self.scalar(depth - 1)} {self.pick('+', '-', '*', '/', '%', '^')} {self.scalar(depth - 1)})"
        return (
            f"({self.scalar(depth - 1)} {self.pick('>', '==', '<=')} bool {self.scalar(depth - 1)})"
        )

    def grouping(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return ""
        labels = ", ".join(self.rng.sample(LABELS, self.rng.randint(0, 2)))
        return f" {self.pick('by', 'by', 'without')} ({labels})"

    def matching(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            return ""
        labels = ", ".join(
            self.rng.sample(["job", "instance", "code", "le"], self.rng.randint(0, 2))
        )
        text = f" {self.pick('on', 'ignoring')}({labels})"
        if self.rng.random() < 0.3:
            extra = ", ".join(self.rng.sample(["team", "version", "code"], self.rng.randint(0, 1)))
            text += f" {self.pick('group_left', 'group_right')}({extra})"
        return text

    def vector(self, depth: int) -> str:  # noqa: C901 - a grammar
        rng = self.rng
        if depth <= 0:
            return self.selector() + self.offset()
        r = rng.random()
        d = depth - 1
        if r < 0.12:
            return self.selector() + self.offset()
        if r < 0.3:
            fn = self.pick(
                "rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets",
                "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
                "count_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
                "present_over_time",
            )  # fmt: skip
            counter = fn in ("rate", "irate", "increase", "resets")
            return f"{fn}({self.range_expr(d, counter)})"
        if r < 0.33:
            return f"quantile_over_time({self.pick('0', '0.5', '0.9', '1', '0.25')}, {self.range_expr(d)})"
        if r < 0.35:
            return f"absent_over_time({self.range_expr(d)})"
        if r < 0.42:
            fn = self.pick(
                "abs", "ceil", "floor", "round", "sgn", "exp", "ln", "sqrt", "timestamp",
                "sort", "sort_desc", "absent",
            )  # fmt: skip
            if fn == "absent" and rng.random() < 0.5:
                return f'absent(nonexistent{{job="a", {self.matcher()}}})'
            return f"{fn}({self.vector(d)})"
        if r < 0.45:
            fn = self.pick("clamp", "clamp_min", "clamp_max", "round")
            if fn == "clamp":
                return f"clamp({self.vector(d)}, {self.scalar(0)}, {self.scalar(0)})"
            return f"{fn}({self.vector(d)}, {self.pick('1', '0.5', '10', '0.1', '3')})"
        if r < 0.47:
            return f"vector({self.scalar(d)})"
        if r < 0.5:
            if rng.random() < 0.5:
                return (
                    f'label_replace({self.vector(d)}, "{self.pick("dst", "job", "instance")}", '
                    f'"{self.pick("$1", "x-$1", "${1}y", "", "$2")}", "{self.pick(*LABELS)}", '
                    f'"{self.pick("(.*)", "(.)", "a|(b)", "([0-9]+)", ".+")}")'
                )
            srcs = ", ".join(f'"{x}"' for x in rng.sample(LABELS, rng.randint(0, 3)))
            sep = self.pick("-", "", ",")
            return f'label_join({self.vector(d)}, "{self.pick("dst", "job")}", "{sep}"{", " if srcs else ""}{srcs})'
        if r < 0.55:
            phi = self.pick("0.5", "0.9", "0.99", "0", "1", "0.25")
            inner = self.pick(
                "sum by (le) (rate(req_seconds_bucket[5m]))",
                "sum by (le, job) (increase(req_seconds_bucket[3m]))",
                "req_seconds_bucket",
                'req_seconds_bucket{job="a"}',
                "rate(req_seconds_bucket[2m])",
            )
            return f"histogram_quantile({phi}, {inner})"
        if r < 0.7:
            op = self.pick(
                "sum", "avg", "min", "max", "count", "stddev", "stdvar", "group",
                "topk", "bottomk", "quantile", "count_values",
            )  # fmt: skip
            g = self.grouping()
            inner = self.vector(d)
            if op in ("topk", "bottomk"):
                return f"{op}{g} ({self.pick('1', '2', '3')}, {inner})"
            if op == "quantile":
                return f"{op}{g} ({self.pick('0.5', '0.9', '0', '1', '0.1')}, {inner})"
            if op == "count_values":
                return f'{op}{g} ("{self.pick("value", "job")}", {inner})'
            if rng.random() < 0.5:
                return f"{op}({inner}){g}"
            return f"{op}{g} ({inner})"
        if r < 0.8:
            op = self.pick("+", "-", "*", "/", "%", "^", ">", "<", "==", "!=", ">=", "<=")
            b = " bool" if op in (">", "<", "==", "!=", ">=", "<=") and rng.random() < 0.4 else ""
            if rng.random() < 0.5:
                return f"{self.paren_vec(d)} {op}{b} {self.scalar(d)}"
            return f"{self.scalar(d)} {op}{b} {self.paren_vec(d)}"
        if r < 0.92:
            op = self.pick("+", "-", "*", "/", ">", "<", "==", "!=", "and", "or", "unless")
            b = " bool" if op in (">", "<", "==", "!=") and rng.random() < 0.4 else ""
            m = self.matching()
            if op in ("and", "or", "unless") and "group_" in m:
                m = m.split(" group_")[0]
            return f"{self.paren_vec(d)} {op}{b}{m} {self.paren_vec(d)}"
        if r < 0.95:
            return f"-{self.paren_vec(d)}"
        if r < 0.97:
            return f"{self.pick('sum', 'max', 'count')}_over_time({self.paren_vec(d)}[{self.pick('5m', '3m')}:{self.pick('1m', '', '30s')}])"
        return f"({self.vector(d)})"


# ------------------------------------------------------------------------------ templates

ANNOTATION_PIECES = [
    "{{ $value | humanizeDuration }}",
    "{{ humanizePercentage 0.0123 }}",
    '{{ printf "%d" 3 }}',
    '{{ printf "%.0f%%" $value }}',
    "{{ $labels }}",
    "{{ with $labels.code }}code {{ . }}{{ else }}no code{{ end }}",
    '{{ $value | printf "%e" }}',
    "{{ humanize 1234567 }} {{ humanize 0.00012 }} {{ humanize1024 2048 }}",
    "{{ humanizeDuration 3661 }} {{ humanizeDuration 0.25 }} {{ humanizeDuration 90061.5 }}",
    "{{ $value }}",
    "{{ $labels.job }}",
    "{{ $labels.instance }}",
    "{{ humanize $value }}",
    "{{ humanizePercentage $value }}",
    "{{ humanizeDuration $value }}",
    '{{ printf "%.2f" $value }}',
    '{{ printf "%.3g" $value }}',
    '{{ printf "%s/%s" $labels.job $labels.instance }}',
    "{{ $value | humanize }}",
    "{{ $value | humanize1024 }}",
    "{{ if gt $value 1.0 }}high{{ else }}low{{ end }}",
    "{{ .Labels.job }}={{ .Value }}",
    '{{ printf "%v" $value }}',
    "{{ $externalLabels.region }}",
]


def gen_annotation(rng: random.Random) -> str:
    return " ".join(rng.sample(ANNOTATION_PIECES, rng.randint(1, 3)))


# ------------------------------------------------------------------------------ shapes
# Test-file shapes promtool reads with fields left out or null (Go's zero values). Spoiled
# expectations stay the most common, so both runners keep printing what they computed.

SPOILED_SAMPLE = {"labels": '{spoiled="yes"}', "value": -42.5}
SPOILED_ALERT = {"exp_labels": {"spoiled": "yes"}}


def shape_omit(rng: random.Random, item: dict, key: str, p: float = 0.05) -> dict:
    """Leave `key` out (or null) now and then."""
    r = rng.random()
    if r < p:
        del item[key]
    elif r < p * 1.5:
        item[key] = None
    return item


def shape_exp_samples(rng: random.Random, scalar: bool) -> dict:
    r = rng.random()
    if r < 0.55:
        return {"exp_samples": [dict(SPOILED_SAMPLE)]}
    if r < 0.7 or (scalar and r < 0.8):
        # no labels: the empty label set, how a scalar result is expected
        sample = rng.choice([{"value": -42.5}, {"labels": "", "value": 7}, {"labels": None}])
        return {"exp_samples": [sample]}
    return rng.choice([{}, {"exp_samples": []}, {"exp_samples": None}, {"exp_samples": [None]}])


def shape_exp_alerts(rng: random.Random) -> dict:
    r = rng.random()
    if r < 0.55:
        return {"exp_alerts": [dict(SPOILED_ALERT)]}
    return rng.choice(
        [
            {},
            {"exp_alerts": []},
            {"exp_alerts": None},
            {"exp_alerts": [None]},
            {"exp_alerts": [{"exp_labels": None, "exp_annotations": None}]},
            {"exp_alerts": [{"exp_labels": {"severity": "page"}}]},
        ]
    )


def shape_series(rng: random.Random, series: list[dict]) -> list[dict]:
    """Now and then a series defined twice (the last definition counts), one without values,
    or a blank entry (which ends the list)."""
    if series and rng.random() < 0.1:
        twice = rng.choice(series)
        series.insert(rng.randint(0, len(series)), {"series": twice["series"], "values": "5x30"})
    if series and rng.random() < 0.05:
        del rng.choice(series)["values"]
    if rng.random() < 0.04:
        series.insert(rng.randint(0, len(series)), rng.choice([None, {"series": "", "values": ""}]))
    return series


SOUP = ["1", "2.5", "+", "-", "x", "_", " ", " ", "stale", "Inf", "a", ".", "3x2", "0", "1e",
        ",", "x3", "010", "NaN", "_x2", "5+1x3"]  # fmt: skip


def gen_soup_group(rng: random.Random) -> dict:
    """A test group whose one series has values made of random pieces of the notation, valid
    or not: both runners must read them alike or reject them with the same message."""
    values = "".join(rng.choice(SOUP) for _ in range(rng.randint(1, 6)))
    return {
        "interval": "1m",
        "input_series": [{"series": "soup", "values": values}],
        "promql_expr_test": [
            {"expr": "soup", "eval_time": f"{rng.randint(0, 6)}m", "exp_samples": []},
            {"expr": "count_over_time(soup[10m])", "eval_time": "10m", "exp_samples": []},
        ],
    }


# ------------------------------------------------------------------------------ files


def gen_file(rng: random.Random, n_cases: int, rules_name: str) -> tuple[dict, dict]:
    steps = rng.randint(8, 25)
    interval = rng.choice(["1m", "1m", "1m", "30s", "15s"])
    g = Gen(rng)
    rules: list[dict] = []
    for i in range(rng.randint(0, 2)):
        name = f"rec_{i}:sum"
        rules.append({"record": name, "expr": g.vector(2)})
    g.records = [r["record"] for r in rules]
    alerts: list[str] = []
    for i in range(rng.randint(1, 3)):
        name = f"Alert{i}"
        expr = g.vector(rng.randint(1, 3))
        if rng.random() < 0.7:
            expr = f"{g.paren_vec(rng.randint(0, 2))} {rng.choice(['>', '<', '>='])} {rng.choice(['0', '1', '5', '10'])}"
        rule: dict = {"alert": name, "expr": expr}
        if rng.random() < 0.7:
            rule["for"] = rng.choice(["1m", "2m", "3m", "90s", "0s"])
        if rng.random() < 0.4:
            rule["keep_firing_for"] = rng.choice(["30s", "1m", "2m", "90s", "5m"])
        if rng.random() < 0.5:
            rule["labels"] = {
                "severity": rng.choice(
                    ["page", "{{ if gt $value 5.0 }}page{{ else }}warn{{ end }}"]
                )
            }
        if rng.random() < 0.8:
            rule["annotations"] = {"summary": gen_annotation(rng)}
            if rng.random() < 0.4:
                rule["annotations"]["description"] = gen_annotation(rng)
        rules.append(rule)
        alerts.append(name)
    rules_doc = {"groups": [{"name": "fuzz", "rules": rules}]}

    def when() -> str:
        s = rng.randint(0, (steps + 6) * 60 // 30) * 30
        if rng.random() < 0.1:
            s += rng.choice([1, 15, 45])
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"

    expr_tests = []
    alert_tests = []
    for _ in range(n_cases):
        if rng.random() < 0.2:
            case: dict = {"eval_time": when(), "alertname": rng.choice(alerts)}
            case.update(shape_exp_alerts(rng))
            alert_tests.append(shape_omit(rng, case, "eval_time"))
        else:
            scalar = rng.random() < 0.15
            expr = g.scalar(2) if scalar else g.vector(rng.choice([0, 1, 1, 2, 2, 3, 4]))
            case = {"expr": expr, "eval_time": when()}
            case.update(shape_exp_samples(rng, scalar))
            expr_tests.append(shape_omit(rng, case, "eval_time"))
    group: dict = {"interval": interval, "input_series": shape_series(rng, gen_series(rng, steps))}
    if rng.random() < 0.5:
        group["external_labels"] = {"region": "eu"}
    if rng.random() < 0.3:
        group["name"] = rng.choice(["fuzzed", "with: colon", None])
    if alert_tests:
        group["alert_rule_test"] = alert_tests
    if expr_tests:
        group["promql_expr_test"] = expr_tests
    shape_omit(rng, group, "interval", 0.08)
    test_doc = {
        "rule_files": [rules_name],
        "evaluation_interval": rng.choice(["1m", "1m", "30s"]),
        "tests": [group]
        + ([None] if rng.random() < 0.05 else [])
        + ([gen_soup_group(rng)] if rng.random() < 0.5 else []),
    }
    shape_omit(rng, test_doc, "evaluation_interval", 0.1)
    return test_doc, rules_doc


# ------------------------------------------------------------------------------ running


def run_promtool(path: Path) -> str:
    done = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", path.name],
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return done.stdout


def run_ours(path: Path) -> str:
    buf = io.StringIO()
    old = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(buf):
            rules_unittest.main([path.name])
    except Exception:  # a crash is a disagreement too; show where
        buf.write("CRASH\n" + traceback.format_exc())
    finally:
        os.chdir(old)
    return buf.getvalue()


# Which match group and two series a many-to-many error names depends on promtool's (random)
# series order.
_DUPLICATE_PAIR = re.compile(
    r"match group \{[^}]*\} (on the (?:left|right) hand-side of the operation: )\[.*?\];"
)


def blocks(output: str) -> list[str]:
    return [
        _DUPLICATE_PAIR.sub(r"match group {...} \1[...];", b)
        for b in output.split("\n\n")
        if b.strip()
    ]


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_SAMPLE = re.compile(r"(\{[^{}]*\}) (\S+?)(?:, |$)")
# Differences that promtool itself makes from run to run; reported, not counted as failures.
TOLERATED = {"float-order", "tie-order", "parse-error-text"}


def _got(block: str) -> list[tuple[str, str]] | None:
    for line in block.split("\n"):
        if line.strip().startswith("got: "):
            body = line.strip()[5:]
            return [] if body == "nil" else _SAMPLE.findall(body)
    return None


def _close(a: str, b: str) -> bool:
    try:
        x, y = float(a.replace("E", "e")), float(b.replace("E", "e"))
    except ValueError:
        return False
    return x == y or abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def classify(mine: str, theirs: str) -> str:
    """Why one failure block differs: ``differ`` (a real disagreement) or a tolerated kind."""
    if "unsupported PromQL construct" in mine:
        return "unsupported"
    if "parse error" in theirs and ("could not parse" in mine or "err:" in mine):
        if mine.split("err:")[0] == theirs.split("err:")[0]:
            return "parse-error-text"
        if "could not parse expression" in mine and "could not parse expression" in theirs:
            return "parse-error-text"  # a rule file both reject; our loader words it its way
    # Numbers (values, count_values labels, $value in annotations) that differ only in the
    # last bits, everything else the same.
    na, nb = _NUMBER.findall(mine), _NUMBER.findall(theirs)
    if (
        _NUMBER.sub("#", mine) == _NUMBER.sub("#", theirs)
        and len(na) == len(nb)
        and all(_close(x, y) for x, y in zip(na, nb, strict=True))
    ):
        return "float-order"
    a, b = _got(mine), _got(theirs)
    if (
        a is None
        or b is None
        or len(a) != len(b)
        or mine.split("got:")[0] != theirs.split("got:")[0]
    ):
        return "differ"
    # promtool loads series in Go map order, so sums, averages and variances of several series
    # round differently from run to run, as topk/bottomk pick differently among ties.
    if all(la == lb and _close(va, vb) for (la, va), (lb, vb) in zip(a, b, strict=True)):
        return "float-order"
    if ("topk" in mine or "bottomk" in mine) and sorted(v for _, v in a) == sorted(v for _, v in b):
        return "tie-order"
    return "differ"


@dataclass
class Disagreement:
    file: Path
    ours: str
    theirs: str
    blocks: list[tuple[str, str, str]]  # (kind, our block, promtool's block)

    @property
    def kinds(self) -> set[str]:
        return {k for k, _, _ in self.blocks}

    @property
    def real(self) -> bool:
        return bool(self.kinds - TOLERATED)


def compare(path: Path) -> Disagreement | None:
    ours = run_ours(path)
    theirs = run_promtool(path)
    if ours == theirs:
        return None
    mine = blocks(ours)
    variants = [{b} for b in blocks(theirs)]

    def agrees() -> bool:
        return len(mine) == len(variants) and all(
            b in v for b, v in zip(mine, variants, strict=True)
        )

    for _ in range(PROMTOOL_RETRIES):
        if agrees():
            return None
        again = blocks(run_promtool(path))
        if len(again) != len(variants):
            break
        for v, b in zip(variants, again, strict=True):
            v.add(b)
    if agrees():
        return None
    found = []
    for i in range(max(len(mine), len(variants))):
        b = mine[i] if i < len(mine) else "<nothing>"
        if i < len(variants) and b in variants[i]:
            continue
        other = sorted(variants[i])[0] if i < len(variants) else "<nothing>"
        found.append((classify(b, other), b, other))
    return Disagreement(path, ours, theirs, found)


def fuzz(
    seed: int, cases: int, keep: Path | None = None, verbose: bool = False
) -> list[Disagreement]:
    rng = random.Random(seed)
    found: list[Disagreement] = []
    with tempfile.TemporaryDirectory(prefix="fuzz_promql_") as tmp:
        tmpdir = Path(tmp)
        n_files = max(1, -(-cases // CASES_PER_FILE))
        for i in range(n_files):
            n = min(CASES_PER_FILE, cases - i * CASES_PER_FILE) or 1
            stem = f"s{seed}_{i}"
            test_doc, rules_doc = gen_file(rng, n, f"{stem}.rules.yml")
            test_path = tmpdir / f"{stem}.test.yml"
            (tmpdir / f"{stem}.rules.yml").write_text(yaml.safe_dump(rules_doc, sort_keys=False))
            test_path.write_text(yaml.safe_dump(test_doc, sort_keys=False))
            d = compare(test_path)
            if d is None:
                continue
            found.append(d)
            if keep is not None and d.real:
                keep.mkdir(parents=True, exist_ok=True)
                for suffix in (".test.yml", ".rules.yml"):
                    shutil.copy(tmpdir / f"{stem}{suffix}", keep / f"{stem}{suffix}")
                (keep / f"{stem}.ours.txt").write_text(d.ours)
                (keep / f"{stem}.promtool.txt").write_text(d.theirs)
            if verbose:
                for kind, mine, other in d.blocks:
                    if kind in TOLERATED and verbose < 2:
                        continue
                    print(f"--- {stem} ({kind})\n  ours:     {mine}\n  promtool: {other}")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1, help="run this many seeds from --seed on")
    ap.add_argument("--cases", type=int, default=300, help="test cases per seed")
    ap.add_argument("--keep", type=Path, help="keep disagreeing files here")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="-vv: tolerated too")
    args = ap.parse_args(argv)
    if not shutil.which("promtool"):
        print("promtool is not installed", file=sys.stderr)
        return 2
    total = 0
    for seed in range(args.seed, args.seed + args.seeds):
        found = fuzz(seed, args.cases, args.keep, args.verbose)
        real = [d for d in found if d.real]
        total += len(real)
        kinds: dict[str, int] = {}
        for d in found:
            for kind, _, _ in d.blocks:
                kinds[kind] = kinds.get(kind, 0) + 1
        print(f"seed {seed}: {args.cases} cases, {len(real)} disagreeing files; blocks {kinds}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
