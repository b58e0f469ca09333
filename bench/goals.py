"""How a benchmark ends, so a crash is never read as a missed goal (or a missed goal as a crash).

Exit 0: every goal met. Exit GOAL_MISSED_EXIT (3), after a line starting with MARKER: a goal
missed, the report printed in full. Anything else (Python's 1 with a traceback) is a crash.
"""

import sys

GOAL_MISSED_EXIT = 3
MARKER = "GOAL MISSED"


def verdict(ok: bool, what: str = "") -> int:
    """The exit code for a run whose goals were (ok) or were not met; prints the marker line."""
    if ok:
        return 0
    print(f"{MARKER}{': ' + what if what else ''}", flush=True)
    sys.stderr.flush()
    return GOAL_MISSED_EXIT
