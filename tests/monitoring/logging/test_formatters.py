import json
import logging
import re
import sys

from monitoring.logging.context import request_id_var, task_var, user_id_var
from monitoring.logging.formatters import ConsoleFormatter, JsonFormatter

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def make_record(msg="Payment processing failed", args=(), level=logging.ERROR, **extra):
    logger = logging.getLogger("payments")
    return logger.makeRecord("payments", level, __file__, 1, msg, args, None, extra=extra)


def test_json_line_has_the_specification_fields_and_extra_keys_at_top_level():
    record = make_record(
        order_id="ORDER-12345", payment_method="stripe", error_code="card_declined"
    )
    rid = request_id_var.set("req-abc123")
    uid = user_id_var.set(12345)
    try:
        line = JsonFormatter(environment="production").format(record)
    finally:
        request_id_var.reset(rid)
        user_id_var.reset(uid)
    assert "\n" not in line
    entry = json.loads(line)
    assert ISO_UTC.match(entry.pop("timestamp"))
    assert entry == {
        "level": "ERROR",
        "logger": "payments",
        "message": "Payment processing failed",
        "request_id": "req-abc123",
        "user_id": 12345,
        "environment": "production",
        "order_id": "ORDER-12345",
        "payment_method": "stripe",
        "error_code": "card_declined",
    }


def test_timestamp_is_utc_with_milliseconds():
    record = make_record()
    record.created = 1704110400.25  # 2024-01-01T12:00:00.250Z
    entry = json.loads(JsonFormatter().format(record))
    assert entry["timestamp"] == "2024-01-01T12:00:00.250Z"


def test_timestamps_stay_right_when_records_arrive_out_of_order():
    formatter = JsonFormatter()
    stamps = []
    for created in (1704110400.999, 1704110401.001, 1704110400.5, 1704110461.0):
        record = make_record()
        record.created = created
        stamps.append(json.loads(formatter.format(record))["timestamp"])
    assert stamps == [
        "2024-01-01T12:00:00.999Z",
        "2024-01-01T12:00:01.001Z",
        "2024-01-01T12:00:00.500Z",
        "2024-01-01T12:01:01.000Z",
    ]


def test_exception_type_message_and_traceback_stay_on_one_line():
    try:
        raise ValueError("bad amount\nsecond line")
    except ValueError:
        logger = logging.getLogger("shop")
        record = logger.makeRecord("shop", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["exc_type"] == "builtins.ValueError"
    assert entry["exc_message"] == "bad amount\nsecond line"
    assert "Traceback (most recent call last)" in entry["exc_traceback"]
    assert 'raise ValueError("bad amount' in entry["exc_traceback"]


def test_values_json_cannot_encode_are_written_as_text():
    record = make_record(amount=__import__("decimal").Decimal("12.50"), tags={"a"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["amount"] == "12.50"
    assert entry["tags"] == ["a"]


def test_task_context_is_written_when_running_a_task():
    token = task_var.set(("abc-123", "shop.orders.tasks.send_confirmation"))
    try:
        entry = json.loads(JsonFormatter().format(make_record()))
    finally:
        task_var.reset(token)
    assert entry["task_id"] == "abc-123"
    assert entry["task_name"] == "shop.orders.tasks.send_confirmation"


def test_a_record_may_name_its_own_user():
    entry = json.loads(JsonFormatter().format(make_record(user_id=7)))
    assert entry["user_id"] == 7


def test_console_format_is_readable_and_redacted():
    rid = request_id_var.set("req-1")
    try:
        line = ConsoleFormatter().format(make_record(error_code="card_declined", password="x"))
    finally:
        request_id_var.reset(rid)
    assert "ERROR" in line and "payments [req-1] Payment processing failed" in line
    assert "error_code=card_declined" in line
    assert "password=[REDACTED]" in line


def _log_as(request_id: str, barrier) -> None:
    token = request_id_var.set(request_id)
    try:
        barrier()  # both requests are in flight at once
        logging.getLogger("shop").info("serving %s", request_id)
    finally:
        request_id_var.reset(token)


def test_concurrent_requests_in_threads_and_async_tasks_keep_their_own_ids(json_logs):
    import asyncio
    import threading

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=_log_as, args=(f"req-thread-{n}", barrier.wait)) for n in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def serve(request_id: str) -> None:
        token = request_id_var.set(request_id)
        try:
            await asyncio.sleep(0.01)  # the other task runs and sets its own id meanwhile
            logging.getLogger("shop").info("serving %s", request_id)
        finally:
            request_id_var.reset(token)

    async def both() -> None:
        await asyncio.gather(serve("req-async-1"), serve("req-async-2"))

    asyncio.run(both())
    lines = [line for line in json_logs.lines() if line["logger"] == "shop"]
    assert len(lines) == 4
    for line in lines:
        assert line["message"] == f"serving {line['request_id']}"
