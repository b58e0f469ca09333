import shutil
import subprocess
import textwrap

import pytest

from monitoring.configfile import ConfigError
from monitoring.rules.alerting import AlertingRule, RecordingRule
from monitoring.rules.gofmt import parse_duration
from monitoring.rules.loader import check_rule_files, load_rule_files
from tests.services import require_prometheus


def _write(tmp_path, text, name="rules.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _errors(path):
    """(line, message) of every problem, each checked to name the file first."""
    out = []
    for error in check_rule_files([path]):
        assert error.startswith(f"{path}:"), error
        line, message = error[len(f"{path}:") :].split(": ", 1)
        out.append((int(line), message))
    return out


def test_a_good_file_loads_into_groups(tmp_path):
    path = _write(
        tmp_path,
        """
        groups:
          - name: g
            interval: 30s
            limit: 10
            rules:
              - record: job:x:sum
                expr: sum by (job) (x)
                labels: {team: a}
              - alert: XHigh
                expr: job:x:sum > 1
                for: 5m
                keep_firing_for: 1m
                labels: {severity: warning}
                annotations: {summary: "{{ $labels.job }} at {{ $value | humanize }}"}
        """,
    )
    (group,) = load_rule_files([path])
    assert (group.name, group.interval_s, group.limit, group.file) == ("g", 30.0, 10, str(path))
    record, alert = group.rules
    assert isinstance(record, RecordingRule) and record.labels == {"team": "a"}
    assert isinstance(alert, AlertingRule)
    assert (alert.for_ms, alert.keep_firing_for_ms) == (300_000, 60_000)


def test_each_problem_is_named_with_its_line(tmp_path):
    path = _write(
        tmp_path,
        """\
        groups:
          - name: a
            rules:
              - alert: NoExpr
                for: 5m
              - record: bad-name
                expr: up
                annotations: {x: y}
              - alert: Both
                record: both
                expr: up
              - alert: BadExpr
                expr: rate(up[5m]
              - alert: BadFor
                expr: up
                for: 5 minutes
              - alert: BadLabel
                expr: up
                labels: {"0bad": x}
                unknown_key: 1
              - alert: BadTemplate
                expr: up
                annotations:
                  summary: "{{ $value | nosuchfunc }}"
          - name: a
            rules: []
        """,
    )
    errors = _errors(path)
    assert (4, "rule 'NoExpr': field 'expr' must be set in rule") in errors
    assert (8, "rule 'bad-name': invalid field 'annotations' in recording rule") in errors
    assert (6, "invalid recording rule name: bad-name") in errors
    assert (9, "only one of 'record' and 'alert' must be set") in errors
    assert any(line == 13 and "could not parse expression" in m for line, m in errors)
    assert (16, 'for: not a valid duration string: "5 minutes"') in errors
    assert (19, "rule 'BadLabel': invalid label name: 0bad") in errors
    assert (20, "field unknown_key not found in rule") in errors
    assert any(line == 24 and 'function "nosuchfunc" not defined' in m for line, m in errors)
    assert (25, 'groupname: "a" is repeated in the same file') in errors


def test_the_error_names_the_file_and_nothing_is_loaded(tmp_path):
    good = _write(tmp_path, "groups: [{name: ok, rules: [{record: a, expr: up}]}]\n", "good.yml")
    bad = _write(tmp_path, "groups:\n  - name: x\n    rules:\n      - alert: A\n", "bad.yml")
    with pytest.raises(ConfigError) as caught:
        load_rule_files([good, bad])
    (error,) = caught.value.errors
    assert error == f"{bad}:4: rule 'A': field 'expr' must be set in rule"


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = _write(tmp_path, "groups:\n  - name: x\n    rules: [\n  oops: : :\n")
    ((line, message),) = _errors(path)
    assert line == 4 and message.startswith("YAML syntax error")


def test_unsupported_constructs_are_refused_on_load(tmp_path):
    path = _write(
        tmp_path,
        """\
        groups:
          - name: g
            rules:
              - alert: Weekend
                expr: cos(x) > 0.5
              - alert: Queried
                expr: up == 0
                annotations:
                  summary: '{{ with query "up" }}{{ . | first | value }}{{ end }}'
        """,
    )
    errors = _errors(path)
    assert (5, "rule 'Weekend': unsupported PromQL construct: function cos()") in errors
    assert any(line == 9 and 'function "query" is not supported' in m for line, m in errors)


@pytest.mark.prometheus
def test_promtool_refuses_the_same_broken_file(tmp_path):
    # Our refusals are not stricter than Prometheus' on what Prometheus also rejects.
    require_prometheus()
    path = _write(tmp_path, "groups:\n  - name: x\n    rules:\n      - alert: A\n        for: 1m\n")
    done = subprocess.run(
        [shutil.which("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "field 'expr' must be set in rule" in done.stdout + done.stderr
    assert _errors(path) == [(4, "rule 'A': field 'expr' must be set in rule")]


def test_parse_duration():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("250ms") == 0.25
    assert parse_duration("0") == 0
    for bad in ("", "5", "1m1h", "-5m", "5 m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
