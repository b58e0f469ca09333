"""Business hours (SECURITY_BUSINESS_HOURS, YAML): when a staff login is expected.

    timezone: Asia/Tehran          # an IANA zone name
    days: [sat, sun, mon, tue, wed] # the working days
    hours: "08:00-18:00"           # start inclusive, end exclusive, local time
    holidays: [2027-03-21]          # whole days off, local dates

A malformed file is refused naming the file, the line and the problem. Read once per process and
again when the file changes (its mtime is checked at most once a second).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from monitoring.configfile import ConfigError, Reader

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    zone: zoneinfo.ZoneInfo
    days: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time
    holidays: frozenset[dt.date]

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.zone)

    def contains(self, moment: dt.datetime) -> bool:
        local = self.local(moment)
        if local.date() in self.holidays or local.weekday() not in self.days:
            return False
        return self.start <= local.time().replace(tzinfo=None) < self.end


def _line(node) -> int:
    return node.start_mark.line + 1


def load(path: Path | str) -> BusinessHours:
    reader = Reader(path)
    errors = reader.errors
    if reader.root is None or errors:
        raise ConfigError(errors or [f"{path}:0: empty file"])
    root = reader.root
    fields = {}
    if root.tag != "tag:yaml.org,2002:map":
        raise ConfigError([f"{path}:{_line(root)}: expected a mapping"])
    for key, value in root.value:
        fields[key.value] = value
    for name in fields.keys() - {"timezone", "days", "hours", "holidays"}:
        errors.append(f"{path}:{_line(fields[name])}: unknown field {name!r}")
    for name in ("timezone", "days", "hours"):
        if name not in fields:
            errors.append(f"{path}:{_line(root)}: missing field {name!r}")
    zone = zoneinfo.ZoneInfo("UTC")
    if "timezone" in fields:
        try:
            zone = zoneinfo.ZoneInfo(str(fields["timezone"].value))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            errors.append(
                f"{path}:{_line(fields['timezone'])}: unknown time zone "
                f"{fields['timezone'].value!r}"
            )
    days: set[int] = set()
    for item in getattr(fields.get("days"), "value", None) or []:
        name = str(getattr(item, "value", "")).lower()[:3]
        if name not in DAYS:
            errors.append(f"{path}:{_line(item)}: unknown day {item.value!r} (mon..sun)")
        else:
            days.add(DAYS.index(name))
    start, end = dt.time(0), dt.time(0)
    if "hours" in fields:
        text = str(fields["hours"].value)
        try:
            first, last = text.split("-")
            start, end = dt.time.fromisoformat(first.strip()), dt.time.fromisoformat(last.strip())
            if end <= start:
                raise ValueError
        except (ValueError, TypeError):
            errors.append(
                f'{path}:{_line(fields["hours"])}: hours {text!r}: expected "HH:MM-HH:MM", '
                "start before end"
            )
    holidays: set[dt.date] = set()
    node = fields.get("holidays")
    for item in node.value if node is not None and isinstance(node.value, list) else []:
        try:
            holidays.add(dt.date.fromisoformat(str(item.value)))
        except ValueError:
            errors.append(f"{path}:{_line(item)}: holiday {item.value!r}: expected YYYY-MM-DD")
    if errors:
        raise ConfigError(errors)
    return BusinessHours(zone, frozenset(days), start, end, frozenset(holidays))


_cache: tuple[str, float, BusinessHours] | None = None
_checked = 0.0


def business_hours() -> BusinessHours:
    """The configured hours, reloaded when the file changes."""
    global _cache, _checked
    path = str(settings.SECURITY_BUSINESS_HOURS)
    now = time.monotonic()
    if _cache is not None and _cache[0] == path and now - _checked < 1.0:
        return _cache[2]
    _checked = now
    mtime = os.stat(path).st_mtime
    if _cache is None or _cache[0] != path or _cache[1] != mtime:
        _cache = (path, mtime, load(path))
    return _cache[2]
