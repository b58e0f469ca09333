"""The one YAML reader: every configuration file's problems as `file:line: problem`, in each
file's own words, and never a crash on bytes YAML refuses."""

import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.configfile import ConfigError, Reader
from monitoring.rules.loader import check_rule_files
from monitoring.thresholds import thresholds_load

ROOT = Path(__file__).resolve().parents[2]


def test_a_character_yaml_refuses_is_reported_with_its_line_not_raised(tmp_path):
    path = tmp_path / "thresholds.yml"
    path.write_text("system:\n  cpu_percent: 85\x01\n")
    with pytest.raises(ConfigError) as exc:
        thresholds_load(path)
    assert exc.value.errors == [
        f"{path}:2: invalid YAML: unacceptable character #x0001: special characters are not allowed"
    ]


def test_a_file_that_is_not_utf8_is_reported_not_raised(tmp_path):
    path = tmp_path / "thresholds.yml"
    path.write_bytes(b"system:\n  cpu_percent: \xff\n")
    ((error),) = Reader(path).errors
    assert error.startswith(f"{path}:0: cannot read file: 'utf-8' codec can't decode byte 0xff")


def test_rule_files_keep_promtools_words_for_the_same_problems(tmp_path):
    bad_character = tmp_path / "a.yml"
    bad_character.write_text("groups:\n  - name: a\x01\n")
    missing = tmp_path / "missing.yml"
    assert check_rule_files([bad_character, missing]) == [
        f"{bad_character}:2: YAML syntax error: unacceptable character #x0001: special "
        "characters are not allowed",
        f"{missing}:0: cannot read rule file: [Errno 2] No such file or directory: '{missing}'",
    ]


def test_problems_come_in_file_order_and_are_raised_together(tmp_path):
    reader = Reader(tmp_path / "x.yml", "b: 1\na: [\n  1, 2]\nc: x\n")
    fields = reader.mapping(reader.root, "top", allowed={"a", "b"}, required={"a", "b", "d"})
    reader.number(fields["b"], "b")
    reader.string(fields["a"], "a")
    with pytest.raises(ConfigError) as exc:
        reader.raise_if_errors()
    assert exc.value.errors == [
        f"{tmp_path}/x.yml:1: top: missing d",
        f"{tmp_path}/x.yml:2: a: expected a string",
        f"{tmp_path}/x.yml:4: top: unknown key 'c'",
    ]
    assert str(exc.value) == "\n".join(exc.value.errors)


def test_loading_thresholds_does_not_import_the_promql_engine():
    # Web workers load thresholds.yml: the rule engine (promql_parser, numpy) stays out.
    code = (
        "import sys, monitoring.thresholds, monitoring.configfile\n"
        "print(sorted(m for m in sys.modules if m.startswith(('promql_parser', 'numpy',"
        " 'monitoring.rules.expr', 'monitoring.rules.engine'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
