"""Application counters fed by the shop's signals (`shop/signals.py`).

The shop only announces events; these receivers count them. Connected once from
`MonitoringConfig.ready()` through `connect_receivers()`.

Exported: ``user_registrations_total``, ``user_logins_total{result="success"|"failure"}``,
``orders_placed_total``, ``orders_completed_total``, ``orders_failed_total``,
``payments_succeeded_total{provider}``, ``payments_failed_total{provider,error_code}``,
``reorder_alerts_total``, ``order_reservations_expired_total``,
``order_reservation_units_released_total``.
"""

import re

from monitoring.metrics import Counter, start_at_zero
from shop import signals
from shop.payments.gateways import GATEWAYS
from shop.payments.gateways.base import ERROR_MESSAGES

__all__ = ["connect_receivers"]

REGISTRATIONS = Counter("user_registrations_total", "Accounts registered.")
LOGINS = Counter("user_logins_total", "Login attempts by result.", ["result"])
ORDERS_PLACED = Counter("orders_placed_total", "Orders placed.")
ORDERS_COMPLETED = Counter("orders_completed_total", "Orders delivered.")
ORDERS_FAILED = Counter("orders_failed_total", "Orders that failed.")
PAYMENTS_SUCCEEDED = Counter("payments_succeeded_total", "Payments that succeeded.", ["provider"])
PAYMENTS_FAILED = Counter(
    "payments_failed_total",
    "Payments that failed, by the provider's error code.",
    ["provider", "error_code"],
)
REORDER_ALERTS = Counter("reorder_alerts_total", "Reorder alerts raised for low stock.")
RESERVATIONS_EXPIRED = Counter(
    "order_reservations_expired_total",
    "Pending orders cancelled because their stock reservation expired.",
)
RESERVATION_UNITS_RELEASED = Counter(
    "order_reservation_units_released_total",
    "Units given back to stock by expired reservations.",
)

# Providers and error codes known in advance start at 0: the failure-rate rule's increase()
# then sees the first failure after a start.
start_at_zero(PAYMENTS_SUCCEEDED, GATEWAYS)
start_at_zero(PAYMENTS_FAILED, [(p, code) for p in GATEWAYS for code in sorted(ERROR_MESSAGES)])

LOGIN_OK = LOGINS.labels("success")
LOGIN_FAILED = LOGINS.labels("failure")

# Error codes and providers come from outside: keep the label set small and printable.
_CODE = re.compile(r"^[a-z0-9_.-]{1,40}$")


def _label(value: object) -> str:
    text = str(value or "").strip().lower()
    return text if _CODE.match(text) else "other"


def _registered(sender, **kwargs) -> None:
    REGISTRATIONS.inc()


def _login(sender, success: bool = False, **kwargs) -> None:
    (LOGIN_OK if success else LOGIN_FAILED).inc()


def _order_placed(sender, **kwargs) -> None:
    ORDERS_PLACED.inc()


def _order_completed(sender, **kwargs) -> None:
    ORDERS_COMPLETED.inc()


def _order_failed(sender, **kwargs) -> None:
    ORDERS_FAILED.inc()


def _payment(sender, payment, **kwargs) -> None:
    provider = _label(getattr(payment, "provider", ""))
    if getattr(payment, "status", "") == "succeeded":
        PAYMENTS_SUCCEEDED.labels(provider).inc()
    else:
        PAYMENTS_FAILED.labels(provider, _label(getattr(payment, "error_code", ""))).inc()


def _reorder_alert(sender, **kwargs) -> None:
    REORDER_ALERTS.inc()


def _reservation_expired(sender, units: int = 0, **kwargs) -> None:
    RESERVATIONS_EXPIRED.inc()
    RESERVATION_UNITS_RELEASED.inc(units)


def connect_receivers() -> None:
    """Idempotent: each receiver has a dispatch_uid."""
    pairs = [
        (signals.user_registered, _registered),
        (signals.login_attempted, _login),
        (signals.order_placed, _order_placed),
        (signals.order_completed, _order_completed),
        (signals.order_failed, _order_failed),
        (signals.payment_finished, _payment),
        (signals.reorder_alert_raised, _reorder_alert),
        (signals.order_reservation_expired, _reservation_expired),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver, weak=False, dispatch_uid=f"monitoring.{receiver.__name__}")
