"""log_access: straight to the access file in the standard set-up, through the logger else."""

import contextlib
import json
import logging
import logging.config

import pytest
from django.conf import settings

from monitoring.logging.access import AccessFields, AccessRecord
from monitoring.logging.access_log import _direct_handler, access_logger, log_access
from monitoring.logging.config import logging_config
from monitoring.logging.counters import LogCounterHandler
from monitoring.logging.formatters import JsonFormatter
from monitoring.logging.handlers import AppendFileHandler
from tests.monitoring.metric_values import sample_value as sample

FIELDS = AccessFields("POST", "/api/orders/", "/api/orders/", 201, 8.5, 17, "10.0.0.9", 3)


@pytest.fixture
def files_mode(tmp_path):
    """The project's logging in files mode, in tmp_path, for one test."""
    logging.config.dictConfig(logging_config(log_dir=tmp_path, environment="staging"))
    yield tmp_path / "access.log"
    logging.config.dictConfig(settings.LOGGING)


@contextlib.contextmanager
def only_configured_handlers():
    """Without pytest's log capture, which pytest adds to non-propagating loggers during a test
    (and which, as any extra handler would, sends the line the record way)."""
    foreign = [
        h for h in access_logger.handlers if type(h) not in (AppendFileHandler, LogCounterHandler)
    ]
    for handler in foreign:
        access_logger.removeHandler(handler)
    try:
        yield
    finally:
        for handler in foreign:
            access_logger.addHandler(handler)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_direct_line_is_the_record_line_and_is_counted(files_mode):
    before = sample("log_records_total", level="INFO")
    with only_configured_handlers():
        assert _direct_handler(access_logger) is not None  # the direct path is the one tested
        log_access(FIELDS)
    assert _direct_handler(access_logger) is None  # pytest's handlers are back: record path
    (direct,) = lines(files_mode)
    record = AccessRecord(FIELDS)
    general = json.loads(JsonFormatter(environment="staging").format_record(record))
    assert list(direct) == list(general)  # same keys, same order
    direct.pop("timestamp"), general.pop("timestamp")
    assert direct == general
    assert sample("log_records_total", level="INFO") == before + 1


def test_a_filter_on_the_logger_sees_a_record(files_mode):
    seen = []

    def keep_only_errors(record):
        seen.append(record)
        return record.status >= 500

    access_logger.addFilter(keep_only_errors)
    try:
        log_access(FIELDS)
        log_access(FIELDS._replace(status=503))
    finally:
        access_logger.removeFilter(keep_only_errors)
    assert [type(r) for r in seen] == [AccessRecord, AccessRecord]
    assert [line["status"] for line in lines(files_mode)] == [503]


def test_level_and_disabled_are_honoured(files_mode):
    with only_configured_handlers():
        access_logger.setLevel(logging.WARNING)
        try:
            log_access(FIELDS)
        finally:
            access_logger.setLevel(logging.NOTSET)
        access_logger.disabled = True
        try:
            log_access(FIELDS)
        finally:
            access_logger.disabled = False
        assert lines(files_mode) == []
        log_access(FIELDS)
    assert len(lines(files_mode)) == 1


def test_console_format_on_stdout_gets_the_console_line(tmp_path, capsys):
    logging.config.dictConfig(
        logging_config(log_dir=tmp_path, stdout_only=True, log_format="console")
    )
    try:
        log_access(FIELDS)
    finally:
        logging.config.dictConfig(settings.LOGGING)
    out = capsys.readouterr().out
    assert "access [-] POST /api/orders/ 201 method=POST route=/api/orders/" in out
    assert not (tmp_path / "access.log").exists()
