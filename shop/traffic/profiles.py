"""What the simulated shop looks like: a healthy default, and named faults laid over it.

A `Mix` holds every knob of the traffic (which actions, which cards, how many mistyped
passwords, whether staff restock, how fast, any database fault). `HEALTHY` is a shop with
nothing wrong: every rate stays well clear of every shipped alert threshold
(deploy/prometheus/*_rules.yml, thresholds.yml) at the default 5 requests a second. Each
`Profile` changes a few knobs to reproduce one real incident and names the shipped alerts that
incident should set off; profiles touching different knobs combine (`--profile a --profile b`).
docs/simulate.md has the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# Stripe's test cards, as the sandbox provider answers them (shop/payments/gateways/sandbox.py).
GOOD_CARDS = {"4242424242424242": 88.0, "5555555555554444": 10.0}
DECLINING_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000119": "processing_error",
}


def card_mix(*, declined_percent: float) -> dict[str, float]:
    """Good cards, plus declining ones making up `declined_percent` of the weight; the
    declines are spread over the codes as card issuers return them (generic declines most)."""
    split = {
        "4000000000000002": 0.45,
        "4000000000009995": 0.3,
        "4000000000000069": 0.15,
        "4000000000000119": 0.1,
    }
    good = sum(GOOD_CARDS.values())
    declined_weight = good * declined_percent / (100 - declined_percent)
    return {**GOOD_CARDS, **{card: declined_weight * share for card, share in split.items()}}


@dataclass(frozen=True)
class DatabaseLock:
    """An exclusive lock on the shop's database, taken for `hold_s` every `every_s` seconds:
    what a maintenance job (a schema change, a VACUUM FULL, a file backup) does to a live shop.
    Held shorter than the app waits for a lock, requests are slow; longer, they fail."""

    hold_s: float
    every_s: float


@dataclass(frozen=True)
class Mix:
    # Relative weights of the simulated actions (simulator._Session._do_<action>).
    actions: dict[str, float] = field(
        default_factory=lambda: {
            "browse": 60,
            "register": 4,
            "login": 5,
            "order": 14,
            "pay": 11,
            "cancel": 1,
            "progress": 5,
        }
    )
    # Card number -> weight. Healthy: about 1.5 % declined, as card payments in a shop
    # without fraud problems (the specification alerts above 5 %).
    cards: dict[str, float] = field(default_factory=lambda: card_mix(declined_percent=1.5))
    # The share of customer logins typed with a wrong password first: about one failed login
    # in ten minutes at 5 requests/s (the specification's security rule: > 5 in 5 minutes).
    mistyped_login_share: float = 0.01
    # Units per order line (inclusive range).
    order_quantity: tuple[int, int] = (1, 3)
    # Staff check stock every `restock_every_s` and book a delivery for every product at or
    # below its reorder point (see simulator.reorder_point), as a shop that reorders in time.
    restock: bool = True
    restock_every_s: float = 60.0
    # Multiplies --rate.
    rate_factor: float = 1.0
    database_lock: DatabaseLock | None = None


HEALTHY = Mix()


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    # The shipped alerts (alertname) this incident should set off at the default rate, and no
    # others. Host-resource alerts (CPU, load, memory, disk) depend on the machine too.
    targets: tuple[str, ...]
    changes: dict = field(default_factory=dict)  # Mix field -> value

    def apply(self, mix: Mix) -> Mix:
        return replace(mix, **self.changes)


PROFILES = {
    p.name: p
    for p in [
        Profile(
            "healthy",
            "a shop with nothing wrong (the default): ~1.5 % card declines, a rare mistyped "
            "password, staff restock before any product runs low",
            targets=(),
        ),
        Profile(
            "payment-declines",
            "a card issuer starts declining: ~25 % of card payments are declined by the "
            "provider (card_declined, insufficient_funds, expired_card, processing_error)",
            targets=("HighPaymentFailureRate", "PaymentFailures"),
            changes={"cards": card_mix(declined_percent=25)},
        ),
        Profile(
            "brute-force",
            "one client guesses the admin's password about once a second (from its own address "
            "against a shop on loopback); the shop blocks it after its 6th failure",
            # The specification's multiple_failed_logins (> 5 in 5 minutes → block the address and
            # alert, security_rules.yml). BruteForceLogins (failures outnumbering successes
            # shop-wide) stays quiet: the block stops the guesses at 6, under the customers' logins.
            targets=("IpBlockedForFailedLogins",),
            changes={"actions": {**HEALTHY.actions, "guess_password": 20}},
        ),
        Profile(
            "stock-depletion",
            "deliveries stall while resellers order in bulk: nobody restocks and order "
            "lines take 5-15 units, so products run down to their low-stock level",
            targets=("LowStock",),
            changes={"restock": False, "order_quantity": (5, 15)},
        ),
        Profile(
            "slow-database",
            "a maintenance job locks the database for 1.5 s every 6 s: statements wait "
            "for the lock and are slower than the slow-query threshold (1 s)",
            targets=("SlowQueries",),
            changes={"database_lock": DatabaseLock(hold_s=1.5, every_s=6)},
        ),
        Profile(
            "error-bursts",
            "a maintenance job locks the database for longer than the app waits for a lock "
            "(SQLite: 20 s; PostgreSQL: its connections are dropped instead, as in a "
            "failover) every 100 s: requests in flight fail with 500 and database errors",
            targets=("DatabaseErrors",),
            changes={"database_lock": DatabaseLock(hold_s=22, every_s=100)},
        ),
        Profile(
            "traffic-spike",
            "a newsletter lands: six times the requests, mostly browsing; the shop's own "
            "alerts stay quiet while it keeps up, the host's CPU and load rise",
            targets=("HighCpuUsage", "HighLoadAverage"),
            changes={"rate_factor": 6.0},
        ),
    ]
}
HOST_ALERTS = frozenset({"HighCpuUsage", "HighMemoryUsage", "HighDiskUsage", "HighLoadAverage"})


class ProfileError(ValueError):
    pass


def mix_for(names: Iterable[str]) -> Mix:
    """The healthy mix with the named profiles applied; two profiles may not set one knob."""
    names = list(names) or ["healthy"]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        raise ProfileError(f"unknown profile {', '.join(unknown)} (known: {', '.join(PROFILES)})")
    mix = HEALTHY
    set_by: dict[str, str] = {}
    for name in dict.fromkeys(names):
        profile = PROFILES[name]
        for knob in profile.changes:
            if knob in set_by:
                raise ProfileError(
                    f"profiles {set_by[knob]} and {name} both change {knob}; run them apart"
                )
            set_by[knob] = name
        mix = profile.apply(mix)
    return mix


def targets_of(names: Iterable[str]) -> set[str]:
    return {alert for name in names for alert in PROFILES[name].targets}
