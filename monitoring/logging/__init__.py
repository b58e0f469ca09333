"""Structured logs, request context and log-derived metrics (issue 4; docs/logging.md).

- `context`: request id, user id, current request and Celery task, as contextvars;
- `formatters`: `JsonFormatter` (one JSON object per line) and `ConsoleFormatter`;
- `redaction`: secrets out of messages, extra keys, nested values and exception text;
- `counters`: `log_records_total`, `log_errors_total`, `payment_errors_total`,
  `database_errors_total`, `log_write_errors_total` and the `LogCounterHandler` that feeds the
  first three;
- `handlers`: `AppendFileHandler` (one O_APPEND write per line); `sink_errors`: a log file
  that refuses lines (counted, reported on stderr once a minute);
- `db_errors`: counts database exceptions where they happen;
- `celery_context`: request id into tasks, Django's LOGGING in Celery workers;
- `config`: `logging_config(...)`, the `LOGGING` dict built from LOG_* settings.

Nothing is imported here on purpose: `celery_context` is imported by config/celery.py before
the metrics directory is chosen, so it must not pull in prometheus_client through `counters`.
"""
