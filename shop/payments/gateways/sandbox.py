"""A local gateway that answers like Stripe's test mode, so failures are real records.

Stripe's published test cards (https://docs.stripe.com/testing):
  4242 4242 4242 4242 and the other brand test numbers succeed;
  4000 0000 0000 0002 card_declined, 9995 insufficient_funds, 9987 lost_card,
  9979 stolen_card, 0069 expired_card, 0127 incorrect_cvc, 0119 processing_error;
  a number failing the Luhn check is incorrect_number; an expiry in the past is
  expired_card (invalid_expiry_year for an earlier year); a too-short CVC is invalid_cvc.
Like Stripe's test mode, any other (real-looking) card is declined.
"""

import datetime
import secrets
from decimal import Decimal

from shop.payments.gateways.base import Card, ChargeResult, PaymentGateway

SUCCEEDING_CARDS = frozenset(
    {
        "4242424242424242",  # Visa
        "4000056655665556",  # Visa (debit)
        "5555555555554444",  # Mastercard
        "2223003122003222",  # Mastercard (2-series)
        "5200828282828210",  # Mastercard (debit)
        "378282246310005",  # American Express
        "6011111111111117",  # Discover
        "3056930009020004",  # Diners Club
        "3566002020360505",  # JCB
    }
)
DECLINING_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "4000000000000341": "card_declined",  # attaches fine, every charge is declined
}


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


class SandboxGateway(PaymentGateway):
    name = "sandbox"

    def __init__(self, *, today: datetime.date | None = None) -> None:
        self.today = today

    def charge(
        self, *, amount: Decimal, currency: str, card: Card, description: str
    ) -> ChargeResult:
        error_code = self._decline_code(card)
        if error_code:
            return ChargeResult(succeeded=False, error_code=error_code)
        return ChargeResult(succeeded=True, reference="ch_sandbox_" + secrets.token_hex(12))

    def capture(self, *, reference: str, amount: Decimal) -> ChargeResult:
        return self._known_charge(reference)

    def refund(self, *, reference: str, amount: Decimal) -> ChargeResult:
        return self._known_charge(reference)

    def _known_charge(self, reference: str) -> ChargeResult:
        if not reference.startswith("ch_sandbox_"):
            return ChargeResult(succeeded=False, error_code="resource_missing")
        return ChargeResult(succeeded=True, reference=reference)

    def _decline_code(self, card: Card) -> str:
        number = card.number
        if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_valid(number)):
            return "incorrect_number"
        today = self.today or datetime.date.today()
        if card.exp_year < today.year:
            return "invalid_expiry_year"
        if (card.exp_year, card.exp_month) < (today.year, today.month):
            return "expired_card"
        if not (card.cvc.isdigit() and len(card.cvc) in (3, 4)):
            return "invalid_cvc"
        if number in DECLINING_CARDS:
            return DECLINING_CARDS[number]
        if number in SUCCEEDING_CARDS:
            return ""
        return "card_declined"  # like Stripe's test mode: real-looking cards are declined
