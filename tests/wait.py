"""Waiting for an event in tests: poll a condition up to a generous deadline, never a fixed sleep.

On a loaded 2-core machine events arrive late but not wrong, so the deadline is long and only
bounds a test that would otherwise hang; a passing test returns as soon as the event happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    what: str = "",
    interval: float = 0.02,
    detail: Callable[[], str] | None = None,
) -> T:
    """Return condition()'s first truthy result; fail the test if none comes within `timeout` s.

    `detail` says, on failure, how far things got (what a rerun could not show)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            seen = f"; {detail()}" if detail is not None else ""
            raise AssertionError(f"not within {timeout:g} s: {what or condition}{seen}")
        time.sleep(interval)


def window_left(seconds: float, period: float = 60.0) -> None:
    """Start a test that counts exactly within one rate-limit window (the limits count per
    wall-clock minute, with the previous minute weighted in) only when at least `seconds` of
    the current window are left; else wait for the next window to begin. A count straddling
    the boundary lets one request more through, by design of the sliding approximation."""
    left = period - time.time() % period
    if left < seconds:
        wait_for(lambda: period - time.time() % period > seconds, left + 5, "the next window")
