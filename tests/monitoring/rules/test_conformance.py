"""The engine against real Prometheus: every promtool-format rule test passes under both
`promtool test rules` (Debian's 2.42) and our runner, and with expectations spoiled both
report exactly the same actual values, alerts and annotations."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring.rules import unittest as rules_unittest
from tests.services import require_prometheus

pytestmark = pytest.mark.spread  # independent tests: xdist may share them out

ROOT = Path(__file__).resolve().parents[3]
CONFORMANCE = sorted((Path(__file__).parent / "conformance").glob("*.test.yml"))
DEPLOYED = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.test.yml"))
TEST_FILES = CONFORMANCE + DEPLOYED
# Files that fail under both runners with exactly the same report (errors promtool prints
# for a whole test group, e.g. a rule's evaluation error).
FAILING = sorted((Path(__file__).parent / "conformance" / "failing").glob("*.test.yml"))


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("promtool") or "promtool", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # promtool splits its report over both; keep the order
        text=True,
        timeout=120,
    )


def test_there_are_test_files_for_every_required_topic():
    names = {p.name for p in CONFORMANCE}
    for topic in ("counters", "staleness", "lifecycle", "histograms", "matching", "functions"):
        assert f"{topic}.test.yml" in names
    assert (ROOT / "deploy/prometheus/tests/alert_rules.test.yml") in DEPLOYED


@pytest.mark.parametrize("path", TEST_FILES, ids=_id)
def test_passes_under_our_runner(path, capsys):
    assert rules_unittest.main([str(path)]) == 0, capsys.readouterr().out


@pytest.mark.prometheus
@pytest.mark.parametrize("path", TEST_FILES, ids=_id)
def test_passes_under_promtool(path):
    require_prometheus()
    done = promtool("test", "rules", path.name, cwd=path.parent)
    assert done.returncode == 0, done.stdout


def _spoil(path: Path, out_dir: Path) -> Path:
    """A copy whose every expectation is wrong, so both runners print what they got."""
    data = yaml.safe_load(path.read_text())
    data["rule_files"] = [str((path.parent / f).resolve()) for f in data.get("rule_files") or []]
    for group in data.get("tests") or []:
        for case in (group or {}).get("promql_expr_test") or []:
            case["exp_samples"] = [{"labels": '{spoiled="yes"}', "value": -42.5}]
        for case in (group or {}).get("alert_rule_test") or []:
            case["exp_alerts"] = [{"exp_labels": {"spoiled": "yes"}}]
    spoiled = out_dir / path.name
    spoiled.write_text(yaml.safe_dump(data, sort_keys=False))
    return spoiled


@pytest.mark.prometheus
@pytest.mark.parametrize("path", TEST_FILES, ids=_id)
def test_failures_report_the_same_actual_results(path, tmp_path, capsys):
    require_prometheus()
    spoiled = _spoil(path, tmp_path)
    theirs = promtool("test", "rules", spoiled.name, cwd=tmp_path)
    assert theirs.returncode == 1
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        status = rules_unittest.main([spoiled.name])
    ours = capsys.readouterr().out
    assert status == 1
    assert ours == theirs.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize("path", FAILING, ids=_id)
def test_failing_files_report_the_same_failures(path, capsys):
    require_prometheus()
    theirs = promtool("test", "rules", path.name, cwd=path.parent)
    assert theirs.returncode == 1
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path.parent)
        status = rules_unittest.main([path.name])
    assert status == 1
    assert capsys.readouterr().out == theirs.stdout
