"""Restarts by `make up`'s supervisor (scripts/up.py), exported beside the app's own metrics.

scripts/up.py keeps `$VAR_DIR/supervisor.json` while it runs: its pid and, per process it keeps
running (web, monitor, worker, beat), how often it started it again. Without that file (no
`make up`, or a deployment with its own supervisor) or with its writer gone, nothing is
exported. Every supervised process is listed from the start, so each count starts at 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, Metric


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class SupervisorCollector:
    def __init__(self, path: Path) -> None:
        self.path = path

    def restarts(self) -> dict[str, int]:
        """Restarts per supervised process; empty when no supervisor is running."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or not _alive(data.get("pid")):
            return {}  # left behind by a supervisor that was killed
        processes = data.get("processes")
        if not isinstance(processes, dict):
            return {}
        return {
            str(name): state["restarts"]
            for name, state in processes.items()
            if isinstance(state, dict) and isinstance(state.get("restarts"), int)
        }

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only

    def collect(self) -> Iterator[Metric]:
        restarts = self.restarts()
        if not restarts:
            return
        family = CounterMetricFamily(
            "supervisor_restarts",
            "Times make up's supervisor (scripts/up.py) started a process again after it exited.",
            labels=["process"],
        )
        for name, count in sorted(restarts.items()):
            family.add_metric([name], count)
        yield family
