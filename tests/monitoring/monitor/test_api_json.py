"""The Prometheus-API JSON shapes (monitoring.monitor.api_json), against what Prometheus prints."""

import json
import math
import random

from monitoring.monitor.api_json import (
    alerts_json,
    group_json,
    result_json_at,
    result_json_text_at,
    rules_json,
)
from monitoring.rules.alerting import AlertingRule
from monitoring.rules.engine import Engine
from monitoring.rules.group import RuleGroup
from monitoring.rules.values import Matrix, Sample, Scalar, Series, String, Vector
from monitoring.tsdb.store import SampleStore, labels_from
from tests.monitoring.rules.test_engine import MIN, _store

SPECIAL = [0.0, -0.0, 1.0, -3.0, 0.5, 1e-05, 1.5e-7, 1e16, 1.2345e21, math.inf, -math.inf, math.nan]


def _alerting_group(value: float, t_ms: int = 0) -> RuleGroup:
    store = SampleStore()
    store.append(labels_from({"__name__": "cpu", "instance": "web1"}), t_ms, value)
    rule = AlertingRule("CpuHigh", "cpu > 85", for_s=120, labels={"severity": "warning"})
    group = RuleGroup("g", "f", 60, [rule])
    group.eval(t_ms, Engine(store), store)
    return group


def test_rules_print_an_alert_value_as_prometheus_does():
    # Defect: /api/v1/rules printed "95" where Prometheus (and our /api/v1/alerts) print
    # Go's %e, "9.5e+01" (Prometheus' rules API and alerts API share one alert shape).
    group = _alerting_group(95)
    (rule,) = rules_json([group])[0]["rules"]
    (in_rules,) = rule["alerts"]
    (in_alerts,) = alerts_json([group])
    assert in_rules["value"] == in_alerts["value"] == "9.5e+01"
    assert in_rules == in_alerts
    assert rule["type"] == "alerting" and rule["state"] == "pending" and rule["health"] == "ok"
    assert in_rules["activeAt"] == "1970-01-01T00:00:00Z"


def test_rules_type_filter_keeps_groups():
    group = _alerting_group(95)
    assert rules_json([group], "record")[0]["rules"] == []
    assert len(rules_json([group], "alert")[0]["rules"]) == 1


def test_api_times_with_milliseconds_print_as_go():
    group = _alerting_group(90, 1_700_000_000_120)
    data = group_json(group)
    rule = data["rules"][0]
    assert rule["alerts"][0]["activeAt"] == "2023-11-14T22:13:20.12Z"
    assert rule["lastEvaluation"] == data["lastEvaluation"] == "2023-11-14T22:13:20.12Z"


def test_never_evaluated_prints_go_zero_time():
    rule = AlertingRule("CpuHigh", "cpu > 85")
    data = group_json(RuleGroup("g", "f", 60, [rule]))
    assert data["lastEvaluation"] == data["rules"][0]["lastEvaluation"] == "0001-01-01T00:00:00Z"


def test_result_json_matches_prometheus_shapes():
    engine = Engine(_store())
    vec = engine.instant('req_total{inst="a"}', 10 * MIN)
    assert result_json_at(vec, 10 * MIN) == {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "req_total", "inst": "a"}, "value": [600, "65"]}],
    }
    assert result_json_at(Scalar(math.inf), 1500) == {
        "resultType": "scalar",
        "result": [1.5, "+Inf"],
    }
    assert result_json_at(String("x"), 0) == {"resultType": "string", "result": [0, "x"]}
    matrix = engine.instant('temp{inst="a"}[1m]', 10 * MIN)
    assert isinstance(matrix, Matrix)
    assert result_json_at(matrix, 0)["result"][0]["values"] == [[540, "NaN"], [600, "29"]]
    assert isinstance(engine.instant("vector(1e21)", 0), Vector)
    assert result_json_at(engine.instant("vector(1e21)", 0), 0)["result"][0]["value"][1] == (
        "1000000000000000000000"
    )


def test_result_json_text_is_the_encoded_result_json():
    # query_range's answer is written as text directly; it must be what json.dumps writes.
    rng = random.Random(5)

    def encoded(result, t_ms):
        return json.dumps(result_json_at(result, t_ms), separators=(",", ":"), allow_nan=False)

    for _ in range(50):
        series = []
        for i in range(rng.randint(0, 4)):
            labels = labels_from(
                {"__name__": "x", "i": str(i), "odd": rng.choice(['"\\\n', "é", "ok"])}
            )
            t = rng.choice([0, 1_700_000_000_000, -5_000]) + rng.randint(0, 999) * rng.randint(0, 1)
            points = []
            for _ in range(rng.randint(0, 20)):
                points.append((t, rng.choice([rng.choice(SPECIAL), rng.uniform(-1e6, 1e6)])))
                t += rng.choice([1000, 15_000, 1, 333])
            series.append(Series(labels, points))
        matrix = Matrix(series)
        assert result_json_text_at(matrix, 0) == encoded(matrix, 0)
    vector = Vector([Sample(labels_from({"a": "b"}), 0.1)])
    for result in (vector, Scalar(math.nan), String("s")):
        assert result_json_text_at(result, 1500) == encoded(result, 1500)
