"""The access record's fast JSON path writes exactly the line the general formatter would."""

import json
import logging

import pytest

from monitoring.logging.access import (
    AccessFields,
    AccessRecord,
    access_line,
    is_plain_access_record,
)
from monitoring.logging.context import request_id_var, request_var, task_var, user_id_var
from monitoring.logging.formatters import ConsoleFormatter, JsonFormatter
from monitoring.logging.redaction import REDACTED

CARD = "4111 1111 1111 1111"
FIELDS = ("method", "route", "path", "status", "duration_ms", "bytes", "client_ip", "user_id")


def access_record(**overrides) -> AccessRecord:
    fields = {
        "method": "GET",
        "route": "/api/orders/<int:pk>/",
        "path": "/api/orders/7/",
        "status": 200,
        "duration_ms": 12.345,
        "size": 321,
        "client_ip": "127.0.0.1",
        "user_id": None,
    }
    return AccessRecord(AccessFields(**(fields | overrides)))


class AuthenticatedRequest:
    """What user_id_of reads: a request whose user Django's auth middleware has resolved."""

    def __init__(self, pk: int) -> None:
        self.user = type("User", (), {"is_authenticated": True, "pk": pk})()


CASES = {
    "plain": {},
    "own user id": {"user_id": 42},
    "streaming response": {"size": None},
    "unmatched route and odd status": {"route": "<unmatched>", "status": 599},
    "unicode and quotes in the path": {"path": '/caf\u00e9/"quoted"\\back\u2028slash/'},
    "token in the path": {"path": "/reset/token=9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b/"},
    "card number in the path": {"path": f"/pay/{CARD}/"},
    "bearer in the path": {"path": "/x/Bearer abcdefghijklmnop/"},
    "unusual method": {"method": "PROPFIND"},
    "secret in the method": {"method": "password=hunter2"},
    "route with a sensitive word": {"route": "/api/<str:token>/", "method": "POST"},
    "secret in the route": {"route": "/api/session=abc/"},
    "client address v6": {"client_ip": "::1"},
    "zero duration": {"duration_ms": 0.0},
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("context", ["request", "none", "request user"])
def test_fast_line_equals_the_general_formatters_line(overrides, context):
    formatter = JsonFormatter(environment="prod\u00fcction")
    record = access_record(**overrides)
    tokens = []
    if context != "none":
        tokens.append((request_id_var, request_id_var.set("req-0123456789abcdef")))
    if context == "request user":
        tokens.append((request_var, request_var.set(AuthenticatedRequest(pk=7))))
    try:
        assert is_plain_access_record(record)
        fast = access_line(record, formatter._clock.iso(record.created), '"prod\u00fcction"')
        assert fast is not None  # the fast path did write it: the comparison means something
        assert formatter.format(record) == fast
        assert fast == formatter.format_record(record)  # byte for byte: keys, values, order
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
    entry = json.loads(fast)
    assert list(entry)[:7] == [
        "timestamp",
        "level",
        "logger",
        "message",
        "request_id",
        "user_id",
        "environment",
    ]
    assert list(entry)[7:] == [f for f in FIELDS if f != "user_id"]
    if context == "request user" and record.user_id is None:
        assert entry["user_id"] == 7


def test_user_controlled_text_is_redacted_on_the_fast_path():
    formatter = JsonFormatter()
    for path in (f"/pay/{CARD}/", "/reset/token=s3cr3t-value/"):
        record = access_record(path=path, method="password=hunter2")
        line = formatter.format(record)
        assert CARD not in line and "s3cr3t" not in line and "hunter2" not in line
        assert REDACTED in json.loads(line)["path"]


def test_access_record_has_every_logrecord_attribute():
    """Other handlers and formatters (%(process)d, %(threadName)s...) see an ordinary record."""
    record = access_record()
    plain = logging.LogRecord("access", logging.INFO, "(access)", 0, "%s %s %s", (), None)
    assert list(vars(record)) == [*vars(plain), *FIELDS]
    assert record.getMessage() == "GET /api/orders/<int:pk>/ 200"
    assert (record.levelname, record.name, record.process) == ("INFO", "access", plain.process)


def test_records_the_fast_path_cannot_serve_take_the_general_path():
    formatter = JsonFormatter()
    touched = access_record()
    touched.tenant = "eu"  # e.g. added by a filter: the general path keeps it
    assert not is_plain_access_record(touched)
    assert json.loads(formatter.format(touched))["tenant"] == "eu"
    odd = access_record(status=float("nan"), duration_ms=float("inf"))
    assert access_line(odd, "t", '"e"') is None
    assert formatter.format(odd) == formatter.format_record(odd)
    token = task_var.set(("task-1", "shop.tasks.x"))  # task lines carry the task
    try:
        assert not is_plain_access_record(access_record())
        assert json.loads(formatter.format(access_record()))["task_id"] == "task-1"
    finally:
        task_var.reset(token)


def test_console_format_shows_the_access_fields():
    token = user_id_var.set(None)
    try:
        line = ConsoleFormatter().format(access_record(user_id=5))
    finally:
        user_id_var.reset(token)
    assert "access [-] GET /api/orders/<int:pk>/ 200 method=GET" in line
    assert "status=200 duration_ms=12.345 bytes=321 client_ip=127.0.0.1 user_id=5" in line
