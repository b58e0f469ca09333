import datetime
from decimal import Decimal

import pytest

from shop.errors import InvalidRequest
from shop.payments.gateways import Card, gateway_get
from shop.payments.gateways.sandbox import SandboxGateway

TODAY = datetime.date(2026, 6, 15)


def charge(number: str, *, exp=(12, 2030), cvc="123"):
    gateway = SandboxGateway(today=TODAY)
    card = Card(number=number, exp_month=exp[0], exp_year=exp[1], cvc=cvc)
    return gateway.charge(amount=Decimal("10.00"), currency="USD", card=card, description="t")


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000009987", "lost_card"),
        ("4000000000009979", "stolen_card"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
        ("4000000000000341", "card_declined"),
        ("4242424242424241", "incorrect_number"),  # fails the Luhn check
        ("4111111111111111", "card_declined"),  # a real-looking card, not a test card
    ],
)
def test_stripe_test_cards_decline_with_their_codes(number, code):
    result = charge(number)
    assert not result.succeeded
    assert result.error_code == code
    assert result.reference == ""


@pytest.mark.parametrize("number", ["4242424242424242", "5555555555554444", "378282246310005"])
def test_stripe_success_cards_are_authorised(number):
    result = charge(number)
    assert result.succeeded and result.reference.startswith("ch_sandbox_")
    captured = SandboxGateway().capture(reference=result.reference, amount=Decimal("10.00"))
    assert captured.succeeded


@pytest.mark.parametrize(
    ("exp", "cvc", "code"),
    [
        ((5, 2026), "123", "expired_card"),
        ((12, 2025), "123", "invalid_expiry_year"),
        ((6, 2026), "12", "invalid_cvc"),
    ],
)
def test_expiry_and_cvc_are_checked_like_stripe(exp, cvc, code):
    assert charge("4242424242424242", exp=exp, cvc=cvc).error_code == code


def test_current_month_is_not_expired():
    assert charge("4242424242424242", exp=(6, 2026)).succeeded


def test_capture_of_unknown_charge_fails():
    assert SandboxGateway().capture(reference="ch_other", amount=Decimal(1)).error_code == (
        "resource_missing"
    )


def test_gateways_are_chosen_by_name():
    assert isinstance(gateway_get(name="sandbox"), SandboxGateway)
    with pytest.raises(InvalidRequest) as unknown:
        gateway_get(name="paypal")
    assert unknown.value.code == "unknown_provider"


def test_refunds_need_a_known_charge():
    gateway = SandboxGateway()
    charge_ref = charge("4242424242424242").reference
    assert gateway.refund(reference=charge_ref, amount=Decimal("10.00")).succeeded
    assert gateway.refund(reference="ch_x", amount=Decimal(1)).error_code == "resource_missing"
