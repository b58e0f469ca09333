"""The access line's fields, its record, and its JSON line: one per request, built cheaply.

An access line is written for every request, so its cost is part of the request middleware's
(bench/bench_middleware.py). `AccessRecord` is a `logging.LogRecord` with the same attributes
(handlers, filters, the console formatter and the log counters see an ordinary record) plus
the fixed access fields as its `extra`; it skips what `Logger.makeRecord` does per call
(factory lookup, the `extra` merge loop, path parsing of a fixed pathname).

`JsonFormatter` recognises it and serialises it without the general pass over the record
(`access_json`, also used by `access_log.log_access` without a record): the keys are fixed and known not to be secret, so only the values that can
hold user-controlled text are scrubbed (the path, an unusual method, the client address), and
the message, made of method, route template and status only, is redacted once per distinct
value and cached. tests/monitoring/logging/test_access.py asserts the line equals the general
formatter's for the same record.
"""

import logging
import os
import sys
import threading
import time
from json.encoder import encode_basestring
from typing import NamedTuple

from monitoring.logging.context import (
    current_trace_ids,
    current_user_id,
    request_id_var,
    task_var,
)
from monitoring.logging.redaction import redact_text

ACCESS_LOGGER = "access"
ACCESS_MESSAGE = "%s %s %s"
_PATHNAME = "(access)"
# Methods Django passes through as they are: text that redaction leaves unchanged.
PLAIN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"))
_START_TIME = logging._startTime  # the reference of every record's relativeCreated
_pid = [os.getpid()]  # a system call per record saved; forked workers update it
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


class AccessFields(NamedTuple):
    """What an access line says about a request (the request id comes from the context)."""

    method: str
    route: str  # the URL pattern, never the raw path
    path: str
    status: int
    duration_ms: float
    size: int | None  # the line's `bytes`: None for a streaming response
    client_ip: str
    user_id: int | None


class AccessRecord(logging.LogRecord):
    """A LogRecord of logger "access" at INFO, its `extra` the access fields, in this order."""

    def __init__(self, fields: AccessFields) -> None:
        method, route, path, status, duration_ms, size, client_ip, user_id = fields
        # The attributes of LogRecord.__init__, in its order (tests compare the two).
        created = time.time()
        self.name = ACCESS_LOGGER
        self.msg = ACCESS_MESSAGE
        self.args = (method, route, status)
        self.levelname = "INFO"
        self.levelno = logging.INFO
        self.pathname = _PATHNAME
        self.filename = _PATHNAME
        self.module = _PATHNAME
        self.exc_info = None
        self.exc_text = None
        self.stack_info = None
        self.lineno = 0
        self.funcName = ACCESS_LOGGER
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - _START_TIME) * 1000
        self.thread = threading.get_ident()
        self.threadName = threading.current_thread().name
        mp = sys.modules.get("multiprocessing")
        self.processName = mp.current_process().name if mp is not None else "MainProcess"
        self.process = _pid[0]
        # The access fields (the record's `extra`).
        self.method = method
        self.route = route
        self.path = path
        self.status = status
        self.duration_ms = duration_ms
        self.bytes = size
        self.client_ip = client_ip
        self.user_id = user_id


# How many attributes an AccessRecord has when nothing has touched it since it was built.
ACCESS_RECORD_SIZE = len(vars(AccessRecord(AccessFields("GET", "", "", 0, 0.0, None, "", None))))


def is_plain_access_record(record: logging.LogRecord) -> bool:
    """An AccessRecord nothing has added attributes to (a filter could), outside a Celery task
    (whose id and name the general formatter adds): the fast path gives the same line."""
    return (
        type(record) is AccessRecord
        and len(record.__dict__) == ACCESS_RECORD_SIZE
        and task_var.get() is None
    )


# JSON fragments (quoted, escaped) of the values that repeat: per method, route and status.
_json = encode_basestring
_PLAIN_METHODS_JSON = {method: _json(method) for method in PLAIN_METHODS}
_messages: dict[tuple[str, str, int], str] = {}
_texts: dict[str, str] = {}  # route templates, paths, client addresses: scrubbed, quoted
_CACHE_LIMIT = 10_000  # entries per cache: the memory stays bounded whatever the traffic
_CACHED_TEXT_LENGTH = 200


def _message_json(method: str, route: str, status: int) -> str:
    key = (method, route, status)
    message = _messages.get(key)
    if message is None:
        message = _json(redact_text(ACCESS_MESSAGE % key))
        if method in PLAIN_METHODS and len(_messages) < _CACHE_LIMIT:
            _messages[key] = message
    return message


def _text_json(text: str) -> str:
    """Redacted and JSON-quoted; short texts are cached, as the same few recur (bounded)."""
    fragment = _texts.get(text)
    if fragment is None:
        fragment = _json(redact_text(text))
        if len(text) <= _CACHED_TEXT_LENGTH:
            if len(_texts) >= _CACHE_LIMIT:
                _texts.clear()
            _texts[text] = fragment
    return fragment


def access_line(record: AccessRecord, timestamp: str, environment_json: str) -> str | None:
    """The JSON line of an AccessRecord (see `access_json`)."""
    fields = record.__dict__
    return access_json(
        timestamp,
        environment_json,
        AccessFields(
            fields["method"],
            fields["route"],
            fields["path"],
            fields["status"],
            fields["duration_ms"],
            fields["bytes"],
            fields["client_ip"],
            fields["user_id"],
        ),
    )


def access_json(timestamp: str, environment_json: str, fields: AccessFields) -> str | None:
    """The JSON line of an access record, or None when a value is of an unusual type (the
    general formatter then writes it).

    The same keys, values and order as `JsonFormatter.format_record`: context first (the
    record's own user id wins when it has one), then the access fields, strings scrubbed as
    there. `environment_json` is the environment already encoded as a JSON string.
    """
    method, route, path, status, duration_ms, size, client_ip, user_id = fields
    if user_id is None:
        user_id = current_user_id()
    request_id = request_id_var.get()
    # Exact types only: their str() is what the JSON encoder writes (no NaN, no subclasses).
    if not (
        type(status) is int
        and type(duration_ms) is float
        and duration_ms - duration_ms == 0.0
        and (size is None or type(size) is int)
        and (user_id is None or type(user_id) is int)
        and (request_id is None or type(request_id) is str)
        and type(method) is str
        and type(route) is str
        and type(path) is str
        and type(client_ip) is str
    ):
        return None
    message = _messages.get((method, route, status)) or _message_json(method, route, status)
    trace = current_trace_ids()  # hex ids: nothing to escape
    trace_json = "" if trace is None else f',"trace_id":"{trace[0]}","span_id":"{trace[1]}"'
    return (
        f'{{"timestamp":"{timestamp}","level":"INFO","logger":"access","message":{message},'
        f'"request_id":{"null" if request_id is None else _json(request_id)},'
        f'"user_id":{"null" if user_id is None else user_id},"environment":{environment_json}{trace_json},'
        f'"method":{_PLAIN_METHODS_JSON.get(method) or _text_json(method)},'
        f'"route":{_texts.get(route) or _text_json(route)},'
        f'"path":{_texts.get(path) or _text_json(path)},"status":{status},'
        f'"duration_ms":{duration_ms!r},"bytes":{"null" if size is None else size},'
        f'"client_ip":{_texts.get(client_ip) or _text_json(client_ip)}}}'
    )
