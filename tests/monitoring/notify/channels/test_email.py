from dataclasses import replace
from email import message_from_bytes, policy

import pytest

from monitoring.notify.channels import EmailChannel
from tests.faults import closed_port, hung_server
from tests.monitoring.notify.channels.sample import notification, payment_alert, resolved
from tests.monitoring.notify.channels.servers import SmtpServer


def _channel(port: int, **kwargs) -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1",
        port=port,
        from_addr="Pasargad monitor <alerts@pasargadprints.com>",
        to=["oncall@pasargadprints.com", "devops@pasargadprints.com"],
        **kwargs,
    )


def test_sends_text_and_html_parts_with_the_idempotency_message_id(smtp):
    n = notification(payment_alert("web-1"), payment_alert("web-2", labels={
        "alertname": "HighPaymentFailureRate", "severity": "critical", "instance": "web-2",
        "team": "product", "job": "django", "shard": "<b>2</b>",
    }))  # fmt: skip
    assert _channel(smtp.port).send(n).delivered
    ((mail_from, rcpt_tos, data),) = smtp.messages
    assert mail_from == "alerts@pasargadprints.com"
    assert rcpt_tos == ["oncall@pasargadprints.com", "devops@pasargadprints.com"]
    message = message_from_bytes(data, policy=policy.default)
    assert message["Subject"] == "[FIRING:2] HighPaymentFailureRate (critical)"
    assert message["From"] == "Pasargad monitor <alerts@pasargadprints.com>"
    assert message["Message-ID"] == f"<{n.idempotency_key}@pasargadprints.com>"
    assert message["X-Idempotency-Key"] == n.idempotency_key
    assert message["X-Alert-Status"] == "firing"
    assert message["In-Reply-To"] == message["References"]
    assert message["References"].startswith("<group-")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "HighPaymentFailureRate" in body
        assert "High payment failure rate" in body
        assert "More than 10% of payments failed in the last 5 minutes" in body
        assert "23.46" in body and "2026-12-04 22:00:00 UTC" in body
        assert "product" in body and "web-2" in body
        assert (
            "https://git.example/pasargad/blob/main/docs/runbooks/HighPaymentFailureRate.md" in body
        )
        assert "http://shop.example/monitoring/dashboard/" in body
        assert n.idempotency_key in body
    assert "shard=<b>2</b>" in text
    assert "shard=&lt;b&gt;2&lt;/b&gt;" in html and "<b>2</b>" not in html  # escaped
    assert "#d00000" in html
    assert n.silence_url.replace("&", "&amp;") in html


def test_the_firing_and_resolved_mails_of_a_group_thread_together(smtp):
    channel = _channel(smtp.port)
    assert channel.send(notification()).delivered
    assert channel.send(notification(resolved(payment_alert()))).delivered
    first, second = (message_from_bytes(m[2], policy=policy.default) for m in smtp.messages)
    assert first["References"] == second["References"]
    assert first["Message-ID"] != second["Message-ID"]
    assert second["Subject"] == "[RESOLVED] HighPaymentFailureRate (critical web-1)"


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("451 4.3.0 try again later", "retryable"), ("550 5.1.1 no such user", "permanent")],
)
def test_smtp_refusals_are_classified_by_reply_class(smtp, reply, outcome):
    smtp.rcpt_reply = reply
    delivery = _channel(smtp.port).send(notification())
    assert delivery.outcome == outcome
    assert reply.split()[0] in delivery.reason
    smtp.rcpt_reply, smtp.data_reply = None, reply
    delivery = _channel(smtp.port).send(notification())
    assert delivery.outcome == outcome
    assert smtp.messages == []


def test_a_server_down_or_hung_is_retryable():
    delivery = _channel(closed_port()).send(notification())
    assert delivery.retry and "ConnectionRefusedError" in delivery.reason
    with hung_server() as server:
        delivery = _channel(server.port, timeout_s=0.5).send(notification())
    assert delivery.retry and "timed out" in delivery.reason.lower()


def test_without_a_recipient_the_failure_is_permanent(smtp):
    channel = EmailChannel(host="127.0.0.1", port=smtp.port, from_addr="a@b.c", to=[])
    assert channel.send(notification()).outcome == "permanent"


def test_only_web_urls_become_links(smtp):
    hostile = payment_alert(
        annotations={"summary": "s", "runbook_url": "javascript:alert(1)"},
        generator_url="file:///etc/passwd",
    )
    n = replace(notification(hostile), dashboard_url="javascript:x", runbook_base_url="")
    assert _channel(smtp.port).send(n).delivered
    message = message_from_bytes(smtp.messages[0][2], policy=policy.default)
    html = message.get_body(("html",)).get_content()
    assert 'href="javascript' not in html and 'href="file' not in html
    assert "Runbook: <code>javascript:alert(1)</code>" in html  # named, not linked
    assert 'href="http://alertmanager.example:9093/#/silences/new' in html


# A test server on loopback: AUTH in plain text is what the warning is about, and intended.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_login_and_a_refused_login():
    server = SmtpServer(login=("alerts", "s3cret"))
    try:
        assert (
            _channel(server.port, username="alerts", password="s3cret")
            .send(notification())
            .delivered
        )
        assert len(server.messages) == 1
        refused = _channel(server.port, username="alerts", password="wrong").send(notification())
        assert refused.outcome == "permanent" and "SMTP 535" in refused.reason
        anonymous = _channel(server.port).send(notification())  # server requires AUTH
        assert anonymous.outcome == "permanent" and "530" in anonymous.reason
        assert len(server.messages) == 1
    finally:
        server.close()
