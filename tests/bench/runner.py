"""Running a benchmark script as `make bench` does, telling a missed goal from a crash."""

from __future__ import annotations

import subprocess
import sys

from bench.goals import GOAL_MISSED_EXIT, MARKER
from tests.gunicorn import ROOT


def run_bench(*args: str, env: dict[str, str]) -> str:
    """The script's report. Exit 0, or the goal-missed exit with its marker line; a traceback or
    any other exit code (a crash: Python exits 1) fails the test. The deadline is generous: a
    two-core machine running the suite's other workers took over 300 s for the notify bench."""
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    report = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, report
    assert result.returncode in (0, GOAL_MISSED_EXIT), report
    missed = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    assert bool(missed) == (result.returncode == GOAL_MISSED_EXIT), report
    return result.stdout
