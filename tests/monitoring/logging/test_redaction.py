import json
import logging

import pytest

from monitoring.logging.redaction import (
    REDACTED,
    is_sensitive_key,
    luhn_valid,
    redact_text,
    redact_value,
)

VISA = "4111111111111111"
AMEX = "378282246310005"
TOKEN = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password1",
        "Authorization",
        "HTTP_AUTHORIZATION",
        "HTTP_COOKIE",
        "Cookie",
        "apiKey",
        "X-Auth-Token",
        "card_number",
        "cvv",
        "client_secret",
        "sessionid",
        "csrftoken",
        "pan",
    ],
)
def test_sensitive_keys(key):
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["user_id", "order_id", "error_code", "payment_method", "company", "username", "path"]
)
def test_ordinary_keys(key):
    assert not is_sensitive_key(key)


def test_luhn():
    assert luhn_valid(VISA) and luhn_valid(AMEX)
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize(
    "text",
    [
        f"charging card {VISA} for order 7",
        "charging card 4111 1111 1111 1111 now",
        "charging card 4111-1111-1111-1111 now",
        f"amex {AMEX}",
    ],
)
def test_card_numbers_in_text_are_removed(text):
    out = redact_text(text)
    assert "1111 1111" not in out and "1111-1111" not in out and VISA not in out
    assert AMEX not in out
    assert REDACTED in out


def _luhn_completed(prefix: str) -> str:
    """`prefix` and the check digit that makes it a valid card number."""
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


# Every card length there is: 13 (old Visa), 14 (Diners), 15 (Amex), 16, and the 17-19 digit
# numbers of Visa, UnionPay, Maestro and Discover.
CARDS = {
    13: "4222222222222",
    14: "30569309025904",
    15: AMEX,
    16: VISA,
    17: _luhn_completed("4" + "1" * 15),
    18: _luhn_completed("6" + "2" * 16),
    19: _luhn_completed("62" + "1" * 16),
}


def _shapes(card: str) -> list[str]:
    fours = [card[i : i + 4] for i in range(0, len(card), 4)]
    return [card, " ".join(fours), "-".join(fours)]


@pytest.mark.parametrize("length", sorted(CARDS))
@pytest.mark.parametrize(
    "template",
    ["paying with {} now", "{}", "card={}.", "qty 2 {}", "{} 12 units", "order 7: {}, total 12"],
)
def test_card_numbers_of_every_length_are_removed(length, template):
    card = CARDS[length]
    assert len(card) == length and luhn_valid(card)
    for shape in _shapes(card):
        out = redact_text(template.format(shape))
        assert REDACTED in out, (shape, out)
        digits = out.replace(" ", "").replace("-", "")
        assert card[-8:] not in digits and card[:8] not in digits, (shape, out)


def test_numbers_that_are_not_cards_stay():
    for text in [
        "order 4111111111111112 total",
        "amount 1234.5678901234567",
        "id 12345",
        "ids 1 2 3 4 5 6 7 8 9 10 11 12 13",  # small numbers side by side are no card
    ]:
        assert redact_text(text) == text


@pytest.mark.parametrize(
    "text,secret",
    [
        (f"Authorization: Bearer {TOKEN}", TOKEN),
        (f"header Token {TOKEN}", TOKEN),
        ("Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        ("login with password=hunter2&user=bob", "hunter2"),
        ("{'username': 'bob', 'password': 'hunter2'}", "hunter2"),
        ('{"api_key": "k-123"}', "k-123"),
        ("Cookie: sessionid=abc123; csrftoken=def456", "abc123"),
        ("Cookie: sessionid=abc123; csrftoken=def456", "def456"),
        ("oauth: client_secret=xyz789&grant_type=x", "xyz789"),
        ("form new_password1=Tr0ub4dor new_password2=Tr0ub4dor", "Tr0ub4dor"),
        ("X-Auth-Token: abcdef123", "abcdef123"),
    ],
)
def test_credentials_in_text_are_removed(text, secret):
    assert secret not in redact_text(text)


def test_ordinary_text_is_left_alone():
    for text in [
        "Token authentication failed for user bob (order 12, 3 items)",
        "company=acme tokens=5 passed: yes",
    ]:
        assert redact_text(text) == text


def test_nested_values_are_redacted_by_key_and_by_text():
    value = {
        "headers": {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        "items": [{"card": VISA}, "ok"],
        "user_id": 5,
    }
    out = redact_value(value)
    assert out == {
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "items": [{"card": REDACTED}, "ok"],
        "user_id": 5,
    }


def test_records_are_redacted_everywhere(json_logs):
    """Message arguments, mapping arguments, extra keys, nested dicts and exception text."""
    log = logging.getLogger("shop.accounts")
    log.warning("login failed for %s with %s", "bob", "password=hunter2")
    log.warning("login failed: %(username)s / %(password)s", {"username": "bob", "password": "p4"})
    log.warning("login failed", extra={"username": "bob", "password": "hunter2"})
    log.info("request", extra={"meta": {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}})
    try:
        raise ValueError(f"card {VISA} refused")
    except ValueError:
        log.exception("payment failed")
    text = json_logs.text
    for secret in ("hunter2", "p4", TOKEN, VISA):
        assert secret not in text
    lines = json_logs.lines()
    assert lines[0]["message"] == f"login failed for bob with password={REDACTED}"
    assert lines[1]["message"] == f"login failed: bob / {REDACTED}"
    assert lines[2]["password"] == REDACTED and lines[2]["username"] == "bob"
    assert lines[3]["meta"] == {"HTTP_AUTHORIZATION": REDACTED}
    assert lines[4]["exc_message"] == f"card {REDACTED} refused"
    assert json.dumps(lines[4]).count(REDACTED) >= 2  # message and traceback
