"""The access record: one per request, built cheaply, still dispatched through Python's logging.

An access line is written for every request, so its cost is part of the request middleware's
(bench/bench_middleware.py). `AccessRecord` is a `logging.LogRecord` with the same attributes
(handlers, filters, the console formatter and the log counters see an ordinary record) plus
the fixed access fields as its `extra`; it skips what `Logger.makeRecord` does per call
(factory lookup, the `extra` merge loop, path parsing of a fixed pathname).

`JsonFormatter` recognises it and serialises it without the general pass over the record
(`access_entry`): the keys are fixed and known not to be secret, so only the values that can
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

from monitoring.logging.context import current_user_id, request_id_var, task_var
from monitoring.logging.redaction import redact_text

ACCESS_LOGGER = "access"
ACCESS_MESSAGE = "%s %s %s"
_PATHNAME = "(access)"
# Methods Django passes through as they are: text that redaction leaves unchanged.
PLAIN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"))
_START_TIME = logging._startTime  # the reference of every record's relativeCreated


class AccessRecord(logging.LogRecord):
    """A LogRecord of logger "access" at INFO, its `extra` the access fields, in this order."""

    def __init__(
        self,
        *,
        method: str,
        route: str,
        path: str,
        status: int,
        duration_ms: float,
        size: int | None,
        client_ip: str,
        user_id: int | None,
    ) -> None:
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
        self.process = os.getpid()
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
ACCESS_RECORD_SIZE = len(
    vars(
        AccessRecord(
            method="GET",
            route="",
            path="",
            status=0,
            duration_ms=0.0,
            size=None,
            client_ip="",
            user_id=None,
        )  # fmt: skip
    )
)


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
_routes: dict[str, str] = {}
_CACHE_LIMIT = 10_000  # methods x route templates x statuses: bounded, but never unbounded


def _message_json(method: str, route: str, status: int) -> str:
    key = (method, route, status)
    message = _messages.get(key)
    if message is None:
        message = _json(redact_text(ACCESS_MESSAGE % key))
        if method in PLAIN_METHODS and len(_messages) < _CACHE_LIMIT:
            _messages[key] = message
    return message


def _route_json(route: str) -> str:
    fragment = _routes.get(route)
    if fragment is None:
        fragment = _json(redact_text(route))
        if len(_routes) < _CACHE_LIMIT:
            _routes[route] = fragment
    return fragment


def _int_or_null(value: object) -> str | None:
    if value is None:
        return "null"
    return int.__repr__(value) if type(value) is int else None


def access_line(record: AccessRecord, timestamp: str, environment_json: str) -> str | None:
    """The JSON line of an access record, or None when a value is of an unusual type (the
    general formatter then writes it).

    The same keys, values and order as `JsonFormatter.format_record`: context first (the
    record's own user id wins when it has one), then the access fields, strings scrubbed as
    there. `environment_json` is the environment already encoded as a JSON string.
    """
    method, route, status = record.method, record.route, record.status
    user_id = record.user_id
    if user_id is None:
        user_id = current_user_id()
    request_id = request_id_var.get()
    duration = record.duration_ms
    status_json = _int_or_null(status)
    user_json = _int_or_null(user_id)
    bytes_json = _int_or_null(record.bytes)
    if (
        status_json is None
        or status is None
        or user_json is None
        or bytes_json is None
        or type(duration) is not float
        or duration - duration != 0.0  # NaN or infinity: JSON spells those differently
        or not (type(request_id) is str or request_id is None)
        or type(method) is not str
        or type(route) is not str
        or type(record.path) is not str
        or type(record.client_ip) is not str
    ):
        return None
    method_json = _PLAIN_METHODS_JSON.get(method) or _json(redact_text(method))
    return (
        f'{{"timestamp":"{timestamp}","level":"INFO","logger":"access",'
        f'"message":{_message_json(method, route, status)},'
        f'"request_id":{"null" if request_id is None else _json(request_id)},'
        f'"user_id":{user_json},"environment":{environment_json},"method":{method_json},'
        f'"route":{_route_json(route)},"path":{_json(redact_text(record.path))},'
        f'"status":{status_json},"duration_ms":{float.__repr__(duration)},"bytes":{bytes_json},'
        f'"client_ip":{_json(redact_text(record.client_ip))}}}'
    )
