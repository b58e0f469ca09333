"""``manage.py monitor ack FINGERPRINT|ALERTNAME ... [--by WHO] [--comment TEXT] [--list]``:
acknowledge in the monitor's state file (MONITOR_STATE_PATH), the same the monitor and the app
read; the running monitor's escalation loop sees it at its next round."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from monitoring.acknowledge import (
    AckError,
    acknowledge_alert,
    acknowledge_by_name,
    acknowledgements,
)

__all__ = ["ack_command"]

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ack_command(alerts: list[str], *, by: str, comment: str, listing: bool, out, err) -> int:
    """Exit status: 0 all acknowledged, 1 something was not firing, 2 a usage problem."""
    if listing:
        for ack in acknowledgements():
            out.write(f"{ack.fingerprint} {ack.alertname} by {ack.by} at {_when(ack.at_ms)}"
                      f"{': ' + ack.comment if ack.comment else ''}")  # fmt: skip
        return 0
    if not alerts:
        err.write("name at least one alert (fingerprint or alertname), or --list")
        return 2
    if not by.strip():
        err.write("--by is required (who acknowledges)")
        return 2
    status = 0
    for target in alerts:
        try:
            if _FINGERPRINT.match(target):
                acks = [acknowledge_alert(target, by, comment)]
            else:
                acks = acknowledge_by_name(target, by, comment)
        except AckError as exc:
            err.write(str(exc))
            status = 1
            continue
        for ack in acks:
            out.write(f"acknowledged {ack.alertname} {ack.fingerprint} by {ack.by}"
                      f" at {_when(ack.at_ms)}")  # fmt: skip
    return status
