from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Card:
    """Card details as the customer typed them. Lives only for the request; never stored."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)

    @property
    def last4(self) -> str:
        return self.number[-4:]


# What the customer is told for each of Stripe's error codes the gateways use.
ERROR_MESSAGES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "invalid_cvc": "Your card's security code is invalid.",
    "invalid_expiry_year": "Your card's expiration year is invalid.",
    "processing_error": "An error occurred while processing your card. Try again.",
    "incorrect_number": "Your card number is incorrect.",
    "resource_missing": "No such charge.",
}


def error_message(code: str) -> str:
    return ERROR_MESSAGES.get(code, "The payment failed.")


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str = ""
    # The provider's error code on failure (Stripe's codes: card_declined, expired_card, ...).
    error_code: str = ""


class PaymentGateway(ABC):
    name: str

    @abstractmethod
    def charge(
        self, *, amount: Decimal, currency: str, card: Card, description: str
    ) -> ChargeResult:
        """Authorise `amount` on the card; a decline is a result, not an exception."""

    @abstractmethod
    def capture(self, *, reference: str, amount: Decimal) -> ChargeResult:
        """Settle a previously authorised charge."""

    @abstractmethod
    def refund(self, *, reference: str, amount: Decimal) -> ChargeResult:
        """Give a charge back (a cancelled order)."""
