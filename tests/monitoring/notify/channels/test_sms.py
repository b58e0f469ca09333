import base64
from urllib.parse import parse_qs

from monitoring.notify.channels import SMSChannel
from monitoring.notify.channels.sms import sms_body, sms_length
from tests.monitoring.notify.channels.sample import notification, payment_alert, resolved


def _channel(url: str, to: list[str]) -> SMSChannel:
    return SMSChannel(
        api_url=url + "/",
        account_sid="AC0123456789",
        auth_token="s3cret",
        from_number="+15550001111",
        to=to,
    )


def test_posts_twilio_form_fields_with_basic_auth_to_each_number(receiver):
    n = notification(payment_alert("web-1"), payment_alert("web-2"))
    channel = _channel(receiver.url, ["+15552220000", "+15553330000"])
    try:
        assert channel.send(n).delivered
    finally:
        channel.close()
    # One request a number, sent at once: they may arrive in either order.
    by_number = {parse_qs(r.body.decode())["To"][0]: r for r in receiver.requests}
    assert len(receiver.requests) == 2 and set(by_number) == {"+15552220000", "+15553330000"}
    for number, request in by_number.items():
        assert request.path == "/2010-04-01/Accounts/AC0123456789/Messages.json"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        scheme, credentials = request.headers["authorization"].split()
        assert scheme == "Basic"
        assert base64.b64decode(credentials).decode() == "AC0123456789:s3cret"
        assert parse_qs(request.body.decode()) == {
            "To": [number],
            "From": ["+15550001111"],
            "Body": ["CRITICAL HighPaymentFailureRate web-1: High payment failure rate (+1 more)"],
        }
        assert request.headers["idempotency-key"] == f"{n.idempotency_key}-{number}"


def test_resolved_body():
    assert sms_body(notification(resolved(payment_alert()))) == (
        "RESOLVED HighPaymentFailureRate web-1: High payment failure rate"
    )


def test_a_long_summary_is_cut_to_one_gsm7_segment_keeping_the_head():
    long = payment_alert(annotations={"summary": "payments failing " * 30})
    body = sms_body(notification(long))
    assert sms_length(body) == ("gsm7", len(body))
    assert 150 <= len(body) <= 160
    assert body.startswith("CRITICAL HighPaymentFailureRate web-1: payments failing")
    assert body.endswith("failing...")  # cut at a word boundary


def test_typographic_punctuation_is_folded_to_gsm7():
    alert = payment_alert(annotations={"summary": "Card “declines” – café côte … ok"})
    body = sms_body(notification(alert))
    assert body.endswith(': Card "declines" - café cote ... ok')
    assert sms_length(body)[0] == "gsm7"  # é is GSM-7 already; ô folds to o


def test_gsm7_extension_characters_count_two_septets():
    assert sms_length("a{b}€") == ("gsm7", 8)
    alert = payment_alert(annotations={"summary": "{x} " * 60})
    body = sms_body(notification(alert))
    encoding, length = sms_length(body)
    assert encoding == "gsm7" and length <= 160 and len(body) < 160


def test_characters_outside_gsm7_fit_one_ucs2_segment():
    alert = payment_alert(annotations={"summary": "خطای پرداخت زیاد است " * 10})
    body = sms_body(notification(alert))
    encoding, length = sms_length(body)
    assert encoding == "ucs2" and length <= 70
    assert body.startswith("CRITICAL HighPaymentFailureRate web-1: خطای")
    assert sms_length("😀") == ("ucs2", 2)  # a surrogate pair is two UTF-16 units


def test_without_a_number_the_failure_is_permanent(receiver):
    delivery = _channel(receiver.url, []).send(notification())
    assert delivery.outcome == "permanent" and "no recipient" in delivery.reason
    assert receiver.requests == []


def test_a_huge_summary_is_cut_quickly():
    alert = payment_alert(annotations={"summary": "x" * 1_000_000})
    body = sms_body(notification(alert))  # would take minutes if every length were tried
    assert body.endswith("x...") and sms_length(body) == ("gsm7", 160)
