import textwrap

import pytest

from monitoring.rules.gofmt import format_go_e
from monitoring.rules.template import TemplateError, expand_alert_template, parse_template
from monitoring.rules.unittest import (
    SeriesError,
    expand_values,
    main,
    parse_metric,
    run_test_file,
)
from monitoring.tsdb.store import STALE_NAN, is_stale

RULES = """\
groups:
  - name: first
    rules:
      - record: doubled
        expr: x * 2
  - name: second
    rules:
      - alert: XHigh
        expr: doubled > 10
        for: 1m
        labels: {severity: warning}
        annotations: {summary: "x doubled is {{ $value }}"}
"""


def _files(tmp_path, tests: str, rules: str = RULES):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "x_rules.yml").write_text(rules)
    test = tmp_path / "tests" / "x.test.yml"
    test.parent.mkdir()
    test.write_text(textwrap.dedent(tests))
    return test


PASSING = """\
    rule_files: ["../rules/*_rules.yml"]
    evaluation_interval: 1m
    group_eval_order: [first, second]
    tests:
      - interval: 1m
        input_series:
          - series: 'x{job="a"}'
            values: '1+2x5'
        alert_rule_test:
          - eval_time: 4m
            alertname: XHigh
            exp_alerts:
              - exp_labels: {job: a, severity: warning}
                exp_annotations: {summary: "x doubled is 18"}
        promql_expr_test:
          - expr: doubled
            eval_time: 2m
            exp_samples:
              - labels: 'doubled{job="a"}'
                value: 10
"""


def test_passing_file_exits_zero(tmp_path, capsys):
    test = _files(tmp_path, PASSING)
    assert main([str(test)]) == 0
    assert capsys.readouterr().out == f"Unit Testing:  {test}\n  SUCCESS\n\n"


def test_failures_print_expected_and_actual_and_exit_one(tmp_path, capsys):
    test = _files(tmp_path, PASSING.replace("value: 10", "value: 11").replace("is 18", "is 17"))
    assert main([str(test)]) == 1
    out = capsys.readouterr().out
    assert '    expr: "doubled", time: 2m,\n' in out
    assert '        exp: {__name__="doubled", job="a"} 1.1E+01\n' in out
    assert '        got: {__name__="doubled", job="a"} 1E+01\n' in out
    assert 'Annotations:{summary="x doubled is 17"}' in out
    assert 'Annotations:{summary="x doubled is 18"}' in out


def test_one_failing_file_among_passing_ones_fails_the_run(tmp_path, capsys):
    good = _files(tmp_path, PASSING)
    bad = tmp_path / "tests" / "bad.test.yml"
    bad.write_text(PASSING.replace("value: 10", "value: 3"))
    assert main([str(good), str(bad)]) == 1
    assert main([str(good), str(good)]) == 0


def test_unknown_key_and_missing_rule_file_fail(tmp_path):
    test = _files(tmp_path, PASSING.replace("evaluation_interval", "evaluation_intervall"))
    assert run_test_file(str(test)) == [
        "    field evaluation_intervall not found in type main.unitTestFile"
    ]
    test.write_text(PASSING.replace("../rules/*_rules.yml", "missing.yml"))
    (err,) = run_test_file(str(test))
    assert "missing.yml" in err and "cannot read rule file" in err


def test_series_notation():
    assert expand_values("1+2x3") == [1, 3, 5, 7]
    assert expand_values("5x2 _ 1") == [5, 5, 5, None, 1]
    assert expand_values("10-1x2 _x2") == [10, 9, 8, None, None]
    assert expand_values("Inf -Inf")[0] == float("inf")
    (stale,) = expand_values("stale")
    assert is_stale(stale) and not is_stale(float("nan"))
    assert STALE_NAN != STALE_NAN
    # promtool's words and column: `x` is the repetition sign, not a number
    with pytest.raises(SeriesError, match=r'^1:3: parse error: unexpected "x" in series values$'):
        expand_values("1+x")
    assert expand_values("010 INF 5.") == [8, float("inf"), 5]  # octal, as Go's ParseInt


def test_metric_parsing_and_value_printing():
    assert parse_metric('up{job="a", instance="b:1"}') == (
        ("__name__", "up"),
        ("instance", "b:1"),
        ("job", "a"),
    )
    assert parse_metric("{}") == ()
    assert parse_metric('{a="x\\"y"}') == (("a", 'x"y'),)
    assert [format_go_e(v, "E") for v in (10, 0.5, 1 / 3, 1e21, 0)] == [
        "1E+01",
        "5E-01",
        "3.333333333333333E-01",
        "1E+21",
        "0E+00",
    ]


def test_template_subset():
    def expand(text, value=1234.5, **labels):
        return expand_alert_template(text, labels=labels or {"job": "a"}, value=value)

    assert expand("{{ $value }}") == "1234.5"
    assert expand("{{ $value | humanize }}") == "1.234k"
    assert expand("{{ humanizePercentage 0.256 }}") == "25.6%"
    assert expand("{{ humanizeDuration 3725 }}") == "1h 2m 5s"
    assert expand('{{ printf "%.1f%%" $value }}') == "1234.5%"
    assert expand("{{- $labels.job -}} / {{ $labels.missing }}.") == "a/ ."
    assert expand('{{ if eq $labels.job "a" }}yes{{ else }}no{{ end }}') == "yes"
    assert expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", job="x") == "job=x;"
    assert expand("{{ $value | nosuch }}").startswith("<error expanding template:")
    with pytest.raises(TemplateError):
        parse_template("{{ if $value }}unclosed")
    with pytest.raises(TemplateError):
        parse_template("{{ $undefined }}")
