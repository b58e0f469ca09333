import io
import json
import logging

import pytest

from monitoring.logging.formatters import JsonFormatter


class JsonCapture:
    """Our JSON formatter writing to memory, attached to the root and the access logger."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter(environment="test"))

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        # Every line must be one JSON object: json.loads fails the test otherwise.
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def json_logs():
    capture = JsonCapture()
    loggers = [logging.getLogger(), logging.getLogger("access")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture.handler)
        logger.setLevel(logging.DEBUG)
    yield capture
    for logger, level in zip(loggers, previous, strict=True):
        logger.removeHandler(capture.handler)
        logger.setLevel(level)
