"""Payment gateways: one small class per provider, chosen by name.

A gateway authorises a charge against a card and later captures it. Adding a provider is a
new module here and one line in GATEWAYS.
"""

from shop.errors import InvalidRequest
from shop.payments.gateways.base import Card, ChargeResult, PaymentGateway, error_message
from shop.payments.gateways.sandbox import SandboxGateway

GATEWAYS: dict[str, type[PaymentGateway]] = {
    SandboxGateway.name: SandboxGateway,
}

__all__ = ["Card", "ChargeResult", "GATEWAYS", "PaymentGateway", "error_message", "gateway_get"]


def gateway_get(*, name: str) -> PaymentGateway:
    try:
        return GATEWAYS[name]()
    except KeyError:
        known = ", ".join(sorted(GATEWAYS))
        raise InvalidRequest(
            f"Unknown payment provider {name!r} (known: {known}).", code="unknown_provider"
        ) from None
