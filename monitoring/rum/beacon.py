"""One beacon from the storefront's rum.js: its shape, and the checks that refuse bad input."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Timings beyond 10 minutes are a tab left in the background, not a page load.
MAX_MS = 600_000.0
MAX_CLS = 100.0
MAX_ERRORS = 1000
_TIMINGS = ("ttfb_ms", "dcl_ms", "load_ms", "lcp_ms", "inp_ms")
_KEYS = frozenset({"page", "cls", "errors", "error_messages", *_TIMINGS})


class BeaconInvalid(ValueError):
    """The beacon was refused; the message is the reason the client is told."""


@dataclass(frozen=True)
class Beacon:
    page: str
    timings_s: dict[str, float] = field(default_factory=dict)  # ttfb, dcl, load, lcp, inp
    cls: float | None = None
    errors: int = 0
    error_messages: tuple[str, ...] = ()


def _number(data: dict, key: str, upper: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BeaconInvalid(f"{key}: expected a number")
    if not 0 <= value <= upper:
        raise BeaconInvalid(f"{key}: {value} is outside 0..{upper:g}")
    return float(value)


def beacon_parse(data: object) -> Beacon:
    """The beacon in ``data`` (parsed JSON), or BeaconInvalid naming the first problem."""
    if not isinstance(data, dict):
        raise BeaconInvalid("expected a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise BeaconInvalid(f"unknown field {unknown[0]!r}")
    page = data.get("page")
    if not isinstance(page, str) or not 0 < len(page) <= 64:
        raise BeaconInvalid("page: expected a string of 1 to 64 characters")
    timings = {}
    for key in _TIMINGS:
        value = _number(data, key, MAX_MS)
        if value is not None:
            timings[key.removesuffix("_ms")] = value / 1000
    errors = _number(data, "errors", MAX_ERRORS)
    if errors is not None and errors != int(errors):
        raise BeaconInvalid("errors: expected a whole number")
    messages = data.get("error_messages", [])
    if not isinstance(messages, list) or len(messages) > 10:
        raise BeaconInvalid("error_messages: expected a list of at most 10 strings")
    if not all(isinstance(m, str) for m in messages):
        raise BeaconInvalid("error_messages: expected a list of at most 10 strings")
    return Beacon(
        page=page,
        timings_s=timings,
        cls=_number(data, "cls", MAX_CLS),
        errors=int(errors or 0),
        error_messages=tuple(m[:200] for m in messages),
    )
