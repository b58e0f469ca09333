"""What happens when a log line cannot be written (LOG_DIR read-only, a full disk).

The application goes on: the line is lost, counted in `log_write_errors_total`
(monitoring/logging/counters.py; alert `LogWriteErrors` in deploy/prometheus/log_rules.yml),
and said on stderr at most once a `REPORT_INTERVAL_SECONDS` per process, with the number of
lines lost since the last report, instead of the traceback per line that logging.Handler's
handleError prints.

The counter is imported on the first failure, not at import: the handlers module is loaded
before some processes choose their metrics directory (see monitoring/logging/__init__.py).
"""

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

REPORT_INTERVAL_SECONDS = 60.0


class Reporter:
    """Counts failed writes and reports them on a stream at most once an interval."""

    def __init__(
        self,
        *,
        interval: float = REPORT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        stream: Callable[[], TextIO] = lambda: sys.stderr,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.stream = stream
        self._lock = threading.Lock()
        self._next_report = float("-inf")
        self._unreported = 0

    def write_failed(self, path: str, error: OSError) -> None:
        _count()
        with self._lock:
            self._unreported += 1
            now = self.clock()
            if now < self._next_report:
                return
            self._next_report = now + self.interval
            lost, self._unreported = self._unreported, 0
        message = (
            f"logging: cannot write to {path}: {error.strerror or error} "
            f"(errno {error.errno}); {lost} log line{'s' if lost != 1 else ''} lost since the "
            f"last report (log_write_errors_total); next report in "
            f"{self.interval:g} s at the earliest\n"
        )
        try:
            stream = self.stream()
            stream.write(message)
            stream.flush()
        except Exception:  # stderr gone too: the counter still tells
            pass


def _count() -> None:
    try:
        from monitoring.logging.counters import count_write_error
    except Exception:  # outside the app (a bare handler in a script): report only
        return
    count_write_error()


REPORTER = Reporter()


def write_failed(path: str, error: OSError) -> None:
    """A line for `path` was lost to `error`: count it, report now and then."""
    REPORTER.write_failed(path, error)
