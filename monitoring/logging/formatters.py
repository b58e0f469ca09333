"""Log formatters: one JSON object per line (production) or a readable line (development).

Both read the same fields: the record's message and extra keys, the request context
(`request_id`, `user_id`, the Celery task) and the exception, with secrets redacted.
"""

import json
import logging
import time
from collections.abc import Mapping
from json.encoder import encode_basestring

from monitoring.logging.access import AccessFields, access_json, access_line, is_plain_access_record
from monitoring.logging.context import (
    current_trace_ids,
    current_user_id,
    request_id_var,
    task_var,
    user_id_of,
)
from monitoring.logging.redaction import REDACTED, is_sensitive_key, redact_text, redact_value

# Everything a LogRecord carries by itself; the rest of its __dict__ is the caller's `extra`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def record_message(record: logging.LogRecord) -> str:
    """The formatted message with secrets removed (mapping arguments by key, text by pattern)."""
    msg = str(record.msg)
    args = record.args
    if args:
        if isinstance(args, Mapping):
            args = {k: REDACTED if is_sensitive_key(k) else v for k, v in args.items()}
        msg = msg % args
    return redact_text(msg)


def record_context(record: logging.LogRecord) -> tuple[str | None, int | None]:
    """The request id and user id of the request being served, or of the record's `request`.

    Django logs 4xx responses ("Bad Request: /api/...") after the middleware has returned, so
    the context is gone by then; the request those records carry still has its id.
    """
    request_id = request_id_var.get()
    if request_id is not None:
        return request_id, current_user_id()
    request = record.__dict__.get("request")
    if request is not None:
        return getattr(request, "request_id", None), user_id_of(request)
    return None, current_user_id()


def record_extra(record: logging.LogRecord) -> dict:
    """The record's own context (`extra=`), redacted, in the order it was given."""
    extra = {}
    for key, value in record.__dict__.items():
        if key in _RECORD_ATTRS or key[0] == "_":
            continue
        if is_sensitive_key(key):
            extra[key] = REDACTED
        elif value is None or type(value) in (int, float, bool):
            extra[key] = value
        elif type(value) is str:
            extra[key] = redact_text(value)
        else:
            extra[key] = redact_value(value)
    return extra


class _UtcClock:
    """ISO 8601 UTC timestamps with milliseconds and a Z; the second part is built once a second.

    One formatter serves several handlers, each with its own lock, so the cached second and its
    text are kept in one tuple, replaced whole (never one half updated by another thread).
    """

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def iso(self, created: float) -> str:
        second = int(created)
        cached = self._cached
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._cached = cached
        # Rounded, not truncated: a float like 1704110401.001 holds 0.000999... past the second.
        return f"{cached[1]}.{min(999, round((created - second) * 1000)):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, with the fields of the specification's example."""

    def __init__(self, *, environment: str = "development", **kwargs) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self._environment_json = encode_basestring(environment)
        self._clock = _UtcClock()
        self._dumps = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), default=str
        ).encode

    def format(self, record: logging.LogRecord) -> str:
        if is_plain_access_record(record):  # one per request: fixed keys, a template
            line = access_line(record, self._clock.iso(record.created), self._environment_json)
            if line is not None:
                return line
        return self.format_record(record)

    def format_access(self, created: float, fields: AccessFields) -> str | None:
        """The line of an access record made at `created`, without making the record
        (monitoring.logging.access_log); None: make the record and format that."""
        return access_json(self._clock.iso(created), self._environment_json, fields)

    def format_record(self, record: logging.LogRecord) -> str:
        """Any record, access records included: context, message, extra keys, exception."""
        request_id, user_id = record_context(record)
        entry = {
            "timestamp": self._clock.iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record_message(record),
            "request_id": request_id,
            "user_id": user_id,
            "environment": self.environment,
        }
        trace = current_trace_ids()
        if trace is not None:
            entry["trace_id"], entry["span_id"] = trace
        task = task_var.get()
        if task is not None:
            entry["task_id"], entry["task_name"] = task
        for key, value in record_extra(record).items():
            # Our own fields win, except that a record may name its request or user itself.
            if key not in entry or (key in ("request_id", "user_id") and value is not None):
                entry[key] = value
        if record.exc_info:
            exc_type, exc_value, _ = record.exc_info
            if exc_type is not None:
                entry["exc_type"] = f"{exc_type.__module__}.{exc_type.__qualname__}"
                entry["exc_message"] = redact_text(str(exc_value))
        if record.exc_info or record.exc_text:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
            entry["exc_traceback"] = redact_text(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact_text(self.formatStack(record.stack_info))
        return self._dumps(entry)


class ConsoleFormatter(logging.Formatter):
    """A readable line for a terminal: time, level, logger, context, message, then key=value."""

    def __init__(self, **kwargs) -> None:
        kwargs.pop("environment", None)
        super().__init__(**kwargs)

    def format(self, record: logging.LogRecord) -> str:
        request_id, user_id = record_context(record)
        context = [request_id or "-"]
        if user_id is not None:
            context.append(f"user={user_id}")
        trace = current_trace_ids()
        if trace is not None:
            context.append(f"trace={trace[0]}")
        task = task_var.get()
        if task is not None:
            context.append(f"task={task[1]}[{task[0]}]")
        parts = [
            self.formatTime(record),
            f"{record.levelname:<8}",
            record.name,
            f"[{' '.join(context)}]",
            record_message(record),
        ]
        parts.extend(f"{key}={value}" for key, value in record_extra(record).items())
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + redact_text(record.exc_text)
        if record.stack_info:
            line += "\n" + redact_text(self.formatStack(record.stack_info))
        return line
