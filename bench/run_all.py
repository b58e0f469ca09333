"""Run every benchmark in bench/ one after another (`make bench`); exit non-zero if any missed.

Each benchmark runs its compared systems side by side and prints its own ratio; the figures
and the commands that produced them are recorded in docs/benchmarks.md.
"""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
from bench.goals import GOAL_MISSED_EXIT  # noqa: E402


def main() -> int:
    missed, crashed = [], []
    for script in sorted(BENCH.glob("bench_*.py")):
        print(f"\n=== {script.name}", flush=True)
        code = subprocess.run([sys.executable, str(script)], cwd=BENCH.parent).returncode
        if code == GOAL_MISSED_EXIT:
            missed.append(script.name)
        elif code != 0:
            crashed.append(f"{script.name} (exit {code})")
    if crashed:
        print(f"\nbenchmarks that crashed: {', '.join(crashed)}")
    if missed:
        print(f"\ngoals missed in: {', '.join(missed)}")
    if missed or crashed:
        return 1
    print("\nall benchmark goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
