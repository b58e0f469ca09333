"""`python -m monitoring.grafana` writes deploy/grafana/dashboards/*.json from the catalogue;
`--check` writes nothing and exits 1 (naming the files) when the checked-in JSON is stale."""

from __future__ import annotations

import argparse
import sys

from monitoring.grafana.build import DASHBOARDS_DIR, differences, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.grafana", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for problem in problems:
            print(f"{DASHBOARDS_DIR}/{problem}", file=sys.stderr)
        if problems:
            print("run: python -m monitoring.grafana", file=sys.stderr)
        return 1 if problems else 0
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
