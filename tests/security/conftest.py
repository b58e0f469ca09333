"""Security settings for a test: its own counter file and integrity directory, business hours
that exclude or include now, the limits the specification gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from security import config

PASSWORD = "correct-horse-battery-9"


def hours_yaml(*, now_inside: bool) -> str:
    """A business-hours file in a zone where it is 03:xx now (after hours), or open all day."""
    if now_inside:
        return 'timezone: UTC\ndays: [mon, tue, wed, thu, fri, sat, sun]\nhours: "00:00-23:59"\n'
    return f'timezone: {zone_at_three()}\ndays: [mon, tue, wed, thu, fri]\nhours: "09:00-17:00"\n'


def zone_at_three() -> str:
    """An Etc/GMT zone in which the local hour is 3 now (their signs are inverted)."""
    offset = (3 - dt.datetime.now(dt.UTC).hour) % 24
    if offset > 14:
        offset -= 24
    if offset == 0:
        return "UTC"
    return f"Etc/GMT{-offset:+d}"


@pytest.fixture
def security(settings, tmp_path: Path):
    """Fresh security state with the production limits (the test settings lift them)."""
    hours = tmp_path / "business_hours.yml"
    hours.write_text(hours_yaml(now_inside=True))
    settings.SECURITY_COUNTER_FILE = str(tmp_path / "counters.bin")
    settings.SECURITY_INTEGRITY_DIR = tmp_path / "integrity"
    settings.SECURITY_BUSINESS_HOURS = hours
    settings.SECURITY_RATE_LIMIT = 1000
    settings.SECURITY_BURST_LIMIT = 30
    settings.TRUSTED_PROXIES = ["10.9.0.0/16"]
    settings.REDIS_URL = ""
    config.reset()
    yield settings
    config.reset()
