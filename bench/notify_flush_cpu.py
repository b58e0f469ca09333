"""Diagnostic (no goal): the notifier's own CPU to take in and flush a burst of new groups.

`Notifier.put` of `--size` new alerts (every alert its own group, `group_wait: 0s`, one
webhook receiver, as bench_notify_latency.py) and the flush that writes their outbox rows and
log entries, in one process with nothing else running: what the flush costs apart from the
sends, the API and the machine it shares in the latency bench. Nothing is sent (the rows are
not handed to the deliverer). Prints the median and the least CPU time of a burst over the
rounds after the first ten. Run it from two checkouts to compare them.

    python bench/notify_flush_cpu.py [--size 100] [--rounds 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitoring.monitor.state import StateStore  # noqa: E402
from monitoring.notify.config import config_load  # noqa: E402
from monitoring.notify.notification import NotifiedAlert  # noqa: E402
from monitoring.notify.pipeline import Notifier  # noqa: E402

CONFIG = """\
route:
  receiver: bench
  group_by: ['...']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:9/bench
        send_resolved: false
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    now = [1_796_421_600_000]
    with tempfile.TemporaryDirectory(prefix="bench-notify-flush-") as tmp:
        store = StateStore(Path(tmp) / "state.sqlite3")
        notifier = Notifier(
            config_load("bench.yml", env={}, text=CONFIG),
            state=store,
            clock=lambda: now[0],
            env={},
        )
        notifier.deliverer.wake = lambda rows=None: None  # the flush alone: nothing is sent
        cpu_ms = []
        for r in range(args.rounds):
            alerts = [
                NotifiedAlert(
                    {"alertname": f"Bench{r}", "bench_id": f"Bench{r}-{i}", "severity": "critical"},
                    {"summary": "benchmark alert"},
                    now[0],
                )
                for i in range(args.size)
            ]
            started = time.process_time()
            notifier.put(alerts)
            notifier.flush_due()
            cpu_ms.append((time.process_time() - started) * 1000)
            now[0] += 1000
        store.close()
    steady = cpu_ms[10:] or cpu_ms  # the first rounds pay first-use imports and caches
    print(
        f"put + flush of {args.size} new groups, CPU ms a burst: "
        f"median {statistics.median(steady):.2f}, least {min(steady):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
