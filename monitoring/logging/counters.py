"""Counters derived from log records and database errors, exported at the Prometheus endpoint.

`LogCounterHandler` sits beside the output handlers (see `config.logging_config`) and counts
every record once: by level, errors by logger, and payment errors by their `error_code`.
Database errors are counted where they happen, in `monitoring.logging.db_errors`; lines a log
file refused in `monitoring.logging.sink_errors`.
The counters are `monitoring.metrics` primitives: summed over gunicorn and Celery processes.
"""

import logging

from monitoring.metrics import Counter, start_at_zero
from shop.payments.gateways.base import ERROR_MESSAGES

log_records_total = Counter("log_records_total", "Log records written, by level.", ["level"])
log_errors_total = Counter(
    "log_errors_total", "Log records at ERROR or above, by logger.", ["logger"]
)
payment_errors_total = Counter(
    "payment_errors_total",
    "Payment failures logged by the payments code, by error code.",
    ["error_code"],
)
database_errors_total = Counter(
    "database_errors_total", "Database exceptions raised, by kind.", ["kind"]
)
# No labels: one series per process, at 0 from the start (monitoring/logging/sink_errors.py).
log_write_errors_total = Counter(
    "log_write_errors_total",
    "Log lines that could not be written to their file (read-only LOG_DIR, full disk).",
)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Django's database exception classes, most specific first (see db_errors.error_kind).
DATABASE_ERROR_KINDS = (
    "IntegrityError",
    "OperationalError",
    "ProgrammingError",
    "DataError",
    "InternalError",
    "NotSupportedError",
    "InterfaceError",
    "DatabaseError",
)

# Loggers whose records with an `error_code` are payment errors (the spec's example: "payments").
PAYMENT_LOGGERS = ("payments", "shop.payments")
# Loggers known to write ERROR records: Django's for unhandled request exceptions, the payment
# failures of the specification's example, Celery's for failed tasks.
ERROR_LOGGERS = ("django.request", "payments", "celery.app.trace")
# The payment providers' error codes the shop knows (Stripe's, see shop.payments.gateways).
PAYMENT_ERROR_CODES = tuple(sorted(ERROR_MESSAGES))
_MAX_LABEL_LENGTH = 64


def _is_payment_logger(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in PAYMENT_LOGGERS)


class _Children(dict):
    """Pre-bound counter children by label value, so the hot path is one dict lookup."""

    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self.counter = counter

    def __missing__(self, label: str):
        child = self.counter.labels(label[:_MAX_LABEL_LENGTH])
        self[label] = child
        return child


_by_level = _Children(log_records_total)
_errors_by_logger = _Children(log_errors_total)
_payment_errors = _Children(payment_errors_total)
_database_errors = _Children(database_errors_total)
_payment_logger_cache: dict[str, bool] = {}

# Known label values start at 0, so the first error after a restart is an increase that
# increase() in the alert rules can see (a series born at 1 shows none).
start_at_zero(log_records_total, LEVELS)
start_at_zero(log_errors_total, ERROR_LOGGERS)
start_at_zero(payment_errors_total, PAYMENT_ERROR_CODES)
start_at_zero(database_errors_total, DATABASE_ERROR_KINDS)


def count_record(record: logging.LogRecord) -> None:
    _by_level[record.levelname].inc()
    if record.levelno >= logging.ERROR:
        _errors_by_logger[record.name].inc()
    if record.levelno >= logging.WARNING:
        error_code = record.__dict__.get("error_code")
        if error_code:
            name = record.name
            is_payment = _payment_logger_cache.get(name)
            if is_payment is None:
                is_payment = _payment_logger_cache.setdefault(name, _is_payment_logger(name))
            if is_payment:
                _payment_errors[str(error_code)].inc()


def count_level(level_name: str) -> None:
    """A record below WARNING written without a LogRecord (the direct access line)."""
    _by_level[level_name]._value.inc(1)  # once per request: Counter.inc's checks skipped


def count_write_error() -> None:
    log_write_errors_total.inc()


def count_database_error(kind: str) -> None:
    _database_errors[kind].inc()


class LogCounterHandler(logging.Handler):
    """Counts records instead of writing them. No lock: the counters are thread-safe."""

    def handle(self, record: logging.LogRecord) -> bool:
        count_record(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        count_record(record)
