"""Run every benchmark in bench/ one after another (`make bench`); exit non-zero if any missed.

Each benchmark runs its compared systems side by side and prints its own ratio; the figures
and the commands that produced them are recorded in docs/benchmarks.md.
"""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(BENCH.glob("bench_*.py")):
        print(f"\n=== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=BENCH.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\ngoals missed or errors in: {', '.join(failed)}")
        return 1
    print("\nall benchmark goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
