"""The Celery beat schedule run in-process, for the embedded mode without Redis.

With REDIS_URL, `celery beat` publishes `CELERY_BEAT_SCHEDULE`'s tasks and a worker runs them.
Without it there is no broker and no worker (tasks run eagerly in the process that sends
them), so `manage.py beat_inprocess` (started by scripts/up.py) runs the same schedule itself:
each entry right away, then every `schedule` seconds. One source of truth for what runs when.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta

logger = logging.getLogger("shop.periodic")


def schedule_intervals(schedule: Mapping[str, dict]) -> dict[str, tuple[str, float]]:
    """{entry name: (task name, seconds)}; only interval schedules (numbers, timedeltas)."""
    intervals = {}
    for name, entry in schedule.items():
        every = entry["schedule"]
        seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
        if seconds <= 0:
            raise ValueError(f"beat schedule {name!r}: the interval must be positive")
        intervals[name] = (entry["task"], seconds)
    return intervals


def run_schedule(
    schedule: Mapping[str, dict],
    *,
    run: Callable[[str], None],
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call `run(task name)` for each entry when due, until `stop` is set. A failing run is
    logged and tried again at its next time; it never stops the others."""
    intervals = schedule_intervals(schedule)
    due = dict.fromkeys(intervals, clock())
    while not stop.is_set():
        now = clock()
        for name, (task, seconds) in intervals.items():
            if now >= due[name]:
                due[name] = now + seconds
                try:
                    run(task)
                except Exception:
                    logger.exception("periodic task %s failed", task, extra={"task": task})
        stop.wait(max(0.0, min(due.values()) - clock()))
