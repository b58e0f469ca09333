import pytest

from tests.monitoring.notify.channels.servers import HttpReceiver, SmtpServer


@pytest.fixture
def receiver():
    server = HttpReceiver()
    yield server
    server.close()


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.close()
