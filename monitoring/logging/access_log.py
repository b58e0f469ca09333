"""`log_access`: the request middleware's access line, written directly when it safely can.

With the configuration `config.logging_config` gives the "access" logger in files mode (JSON
lines to an `AppendFileHandler`, plus the `LogCounterHandler`, no filters, not propagating),
handing a record to the logger would only lead to `JsonFormatter.format_access` and one write:
so the line is built from the fields and appended directly, and counted, skipping the record
and the logger's dispatch (docs/benchmarks.md, "request middleware overhead").

Any other set-up (stdout, the console format, a filter, another handler, a level above INFO on
a handler, a Celery task's context) gets an `AccessRecord` through the logger as usual, so the
LOG_* settings, levels and `disabled` keep working; the logger's own level is checked first in
both cases. tests/monitoring/logging/test_access_log.py asserts both give the same line.
"""

import logging
import time

from monitoring.logging.access import ACCESS_LOGGER, AccessFields, AccessRecord
from monitoring.logging.context import task_var
from monitoring.logging.counters import LogCounterHandler, count_level
from monitoring.logging.formatters import JsonFormatter
from monitoring.logging.handlers import AppendFileHandler

access_logger = logging.getLogger(ACCESS_LOGGER)
_INFO = logging.INFO


def _direct_handler(logger: logging.Logger) -> AppendFileHandler | None:
    """The file handler when the logger is set up as logging_config sets it up, else None.

    Checked on every line (a handful of attribute reads): dictConfig, addHandler, setLevel or
    addFilter may change the set-up at any time.
    """
    handlers = logger.handlers
    if logger.filters or logger.propagate or len(handlers) != 2:
        return None
    file_handler, counter = handlers
    if (
        type(file_handler) is AppendFileHandler
        and type(counter) is LogCounterHandler
        and type(file_handler.formatter) is JsonFormatter
        and not file_handler.filters
        and not counter.filters
        and file_handler.level <= _INFO
        and counter.level <= _INFO
    ):
        return file_handler
    return None


def log_access(fields: AccessFields) -> None:
    """Write one access line."""
    logger = access_logger
    if not logger.isEnabledFor(_INFO):
        return
    handler = _direct_handler(logger)
    if handler is not None and task_var.get() is None:
        line = handler.formatter.format_access(time.time(), fields)
        if line is not None:
            try:
                handler.write_line(line)
            except Exception:
                handler.handleError(AccessRecord(fields))
            count_level("INFO")
            return
    logger.handle(AccessRecord(fields))
