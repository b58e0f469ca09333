"""The range selector's choices: 15 minutes up to the retention of the data source."""

from __future__ import annotations

__all__ = ["range_choices"]

_STEPS = (
    ("15m", 900), ("1h", 3600), ("3h", 3 * 3600), ("6h", 6 * 3600), ("12h", 12 * 3600),
    ("24h", 86400), ("2d", 2 * 86400), ("7d", 7 * 86400), ("15d", 15 * 86400),
    ("30d", 30 * 86400), ("90d", 90 * 86400),
)  # fmt: skip


def range_choices(retention_s: int) -> list[dict]:
    """Every step shorter than the retention, then the retention itself ("all")."""
    choices = [{"label": label, "seconds": s} for label, s in _STEPS if s < retention_s]
    choices.append({"label": f"all ({_human(retention_s)})", "seconds": retention_s})
    return choices


def _human(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
