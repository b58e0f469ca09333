import math

import pytest

from monitoring.rules.engine import Engine
from monitoring.rules.errors import ParseError, QueryError, UnsupportedError
from monitoring.rules.expr import check_supported, compile_expr, parse_expr
from monitoring.tsdb.store import STALE_NAN, SampleStore, labels_from
from tests.monitoring.rules.steps import bits, instant_at_every_step

MIN = 60_000


def _store() -> SampleStore:
    store = SampleStore()
    series = {
        ("req_total", "a"): [0, 10, 20, 30, 5, 15, 25, 35, 45, 55, 65],
        ("req_total", "b"): [100, 130, 160, 190, 220, 250, STALE_NAN],
        ("temp", "a"): [20, 21, 19, 22, 25, 18, 17, 30, 31, math.nan, 29],
    }
    for (name, inst), values in series.items():
        for i, v in enumerate(values):
            store.append(labels_from({"__name__": name, "inst": inst}), i * MIN, v)
    return store


EXPRESSIONS = [
    "req_total",
    "rate(req_total[5m])",
    "increase(req_total[3m])",
    "irate(req_total[5m])",
    "delta(temp[4m])",
    "deriv(temp[5m])",
    "max_over_time(temp[3m])",
    "avg_over_time(temp[3m])",
    "changes(temp[10m])",
    "resets(req_total[10m])",
    "last_over_time(temp[2m])",
    "sum(rate(req_total[5m]))",
    "req_total offset 2m",
    "rate(req_total[5m] offset 1m) * 60",
    "temp > 20",
    "-temp",
    "sum by (inst) (req_total) / on (inst) temp",
    "time()",
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_range_query_equals_instant_query_at_every_step(expr):
    # The range path evaluates whole series at a time; it must agree with step-by-step.
    engine = Engine(_store())
    start, end, step = 0, 12 * MIN, 30_000
    matrix = engine.range(expr, start, end, step)
    got = {s.labels: [(t, bits(v)) for t, v in s.points] for s in matrix.series}
    assert got == instant_at_every_step(engine, expr, start, end, step)


def test_lookback_and_staleness():
    engine = Engine(_store())
    # b went stale at 6m: gone at once, not 5 minutes later.
    assert [dict(s.labels)["inst"] for s in engine.instant("req_total", 6 * MIN).samples] == ["a"]
    assert len(engine.instant("req_total", 5 * MIN).samples) == 2
    # a's last sample is at 10m: visible through 15m inclusive, gone after.
    assert engine.instant("req_total", 15 * MIN).samples[0].value == 65
    assert engine.instant("req_total", 15 * MIN + 1).samples == []


def test_rate_handles_a_counter_reset():
    engine = Engine(_store())
    # a: 20 30 | 5 15 25 over [2m, 6m]: 10 + 5 (reset: 30 counted) + 20 = 35... as Prometheus:
    # last - first + value before each drop = 25 - 20 + 30 = 35.
    (sample,) = engine.instant('increase(req_total{inst="a"}[4m])', 6 * MIN).samples
    assert sample.value == 35
    assert dict(sample.labels) == {"inst": "a"}  # the metric name is dropped


def test_duplicate_labelsets_after_dropping_the_name_are_an_error():
    store = SampleStore()
    store.append(labels_from({"__name__": "a", "x": "1"}), 0, 1)
    store.append(labels_from({"__name__": "b", "x": "1"}), 0, 2)
    engine = Engine(store)
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        engine.instant('abs({__name__=~"a|b"})', 0)
    # the comparison keeps the name, so no clash there
    assert len(engine.instant('{__name__=~"a|b"} > 0', 0).samples) == 2


def test_many_to_many_and_missing_group_modifier_are_errors():
    store = SampleStore()
    for inst in ("1", "2"):
        store.append(labels_from({"__name__": "m", "job": "j", "inst": inst}), 0, 1)
    store.append(labels_from({"__name__": "owner", "job": "j", "team": "t"}), 0, 1)
    engine = Engine(store)
    with pytest.raises(QueryError, match="many-to-many matching not allowed"):
        engine.instant("owner + on (job) m", 0)
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        engine.instant("m + on (job) owner", 0)
    result = engine.instant("m + on (job) group_left (team) owner", 0)
    assert sorted(dict(s.labels)["inst"] for s in result.samples) == ["1", "2"]
    assert all(dict(s.labels)["team"] == "t" for s in result.samples)


def test_unsupported_constructs_are_refused_by_name():
    for expr, construct in [
        ("frobnicate(x[5m])", None),  # not even parsed: unknown to the parser
        ("cos(x)", "function cos()"),
        ("limitk(2, x)", None),
    ]:
        if construct is None:
            with pytest.raises(QueryError):
                compile_expr(expr)
            continue
        with pytest.raises(UnsupportedError) as caught:
            check_supported(parse_expr(expr))
        assert caught.value.construct == construct
        assert construct in str(caught.value)


def test_parse_errors_are_query_errors():
    with pytest.raises(ParseError):
        compile_expr("rate(x[5m]")
    with pytest.raises(ParseError):
        compile_expr('x{a=~"("}')


def test_range_query_rejects_strings_and_bad_steps():
    engine = Engine(_store())
    with pytest.raises(QueryError, match="invalid expression type"):
        engine.range('"x"', 0, MIN, 1000)
    with pytest.raises(QueryError, match="zero or negative"):
        engine.range("req_total", 0, MIN, 0)


def test_many_to_many_error_prints_label_sets_as_prometheus():
    # promtool 2.42 prints exactly this for the same series (a value with a quote is escaped).
    store = SampleStore()
    for inst in ('a"b', "2"):
        store.append(labels_from({"__name__": "m", "job": "j", "inst": inst}), 0, 1)
    store.append(labels_from({"__name__": "owner", "job": "j"}), 0, 1)
    with pytest.raises(QueryError) as exc:
        Engine(store).instant("owner + on (job) m", 0)
    assert str(exc.value) == (
        'found duplicate series for the match group {job="j"} on the right hand-side of the '
        'operation: [{__name__="m", inst="2", job="j"}, {__name__="m", inst="a\\"b", job="j"}];'
        "many-to-many matching not allowed: matching labels must be unique on one side"
    )
