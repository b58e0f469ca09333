"""Every HTTP channel classifies failures alike (Alertmanager's Retrier): 5xx and 429 and no
answer are worth retrying, other 4xx are not."""

import pytest

from monitoring.notify.channels import SlackChannel, SMSChannel, WebhookChannel
from tests.faults import closed_port, hung_server
from tests.monitoring.notify.channels.sample import notification


def _channels(url: str, timeout_s: float = 10.0):
    return [
        WebhookChannel(url, timeout_s=timeout_s),
        SlackChannel(url, timeout_s=timeout_s),
        SMSChannel(
            api_url=url,
            account_sid="AC1",
            auth_token="t",
            from_number="+15550000000",
            to=["+15551111111"],
            timeout_s=timeout_s,
        ),
    ]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (201, "ok"), (500, "retryable"), (503, "retryable"), (429, "retryable"),
     (400, "permanent"), (401, "permanent"), (404, "permanent")],
)  # fmt: skip
def test_status_classification(receiver, status, outcome):
    receiver.status, receiver.reply = status, b"invalid_blocks"
    for channel in _channels(receiver.url):
        delivery = channel.send(notification())
        channel.close()
        assert delivery.outcome == outcome, channel.kind
        if outcome != "ok":
            assert f"HTTP {status}: invalid_blocks" in delivery.reason
            assert receiver.url not in delivery.reason  # a webhook URL is a secret


def test_connection_refused_is_retryable():
    for channel in _channels(f"http://127.0.0.1:{closed_port()}"):
        delivery = channel.send(notification())
        channel.close()
        assert delivery.retry, channel.kind
        assert "ConnectError" in delivery.reason


def test_a_hung_receiver_times_out_and_is_retryable():
    with hung_server() as server:
        for channel in _channels(f"http://127.0.0.1:{server.port}", timeout_s=0.5):
            delivery = channel.send(notification())
            channel.close()
            assert delivery.retry, channel.kind
            assert "timed out" in delivery.reason
