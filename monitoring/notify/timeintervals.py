"""Alertmanager's time intervals (timeinterval/timeinterval.go of 0.25): when a route's
`mute_time_intervals` mute it and its `active_time_intervals` let it send.

An interval is a conjunction of optional fields (times, weekdays, days_of_month, months,
years), each a list of inclusive ranges of which one must hold; `location` converts the
instant first. Negative days of month count from the month's end (-1 is its last day).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    "january february march april may june july august september october november december"
).split()
_TIME_RE = re.compile(r"(([01][0-9]|2[0-3]):[0-5][0-9])|24:00")

Range = tuple[int, int]


class TimeIntervalError(ValueError):
    """A range Alertmanager would refuse; the message is the problem, not the place."""


@dataclass(frozen=True)
class TimeInterval:
    """One entry of a named interval's `time_intervals` list. None: the field is absent."""

    times: tuple[Range, ...] | None = None  # minutes of the day, [start, end)
    weekdays: tuple[Range, ...] | None = None  # 0 = Sunday
    days_of_month: tuple[Range, ...] | None = None
    months: tuple[Range, ...] | None = None
    years: tuple[Range, ...] | None = None
    location: str | None = None  # an IANA name; None is UTC

    def contains(self, when: datetime) -> bool:
        """Whether the instant `when` (timezone-aware) falls in this interval."""
        when = when.astimezone(ZoneInfo(self.location or "UTC"))
        if self.times is not None:
            minute = when.hour * 60 + when.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.days_of_month is not None:
            if not any(_day_in(when, begin, end) for begin, end in self.days_of_month):
                return False
        checks = (
            (self.months, when.month),
            (self.weekdays, (when.weekday() + 1) % 7),
            (self.years, when.year),
        )
        for ranges, value in checks:
            if ranges is not None and not any(b <= value <= e for b, e in ranges):
                return False
        return True


def _day_in(when: datetime, begin: int, end: int) -> bool:
    days = calendar.monthrange(when.year, when.month)[1]
    begin = days + begin + 1 if begin < 0 else begin
    end = days + end + 1 if end < 0 else end
    if begin > days:
        return False
    begin, end = (max(-days, min(n, days)) for n in (begin, end))
    return begin <= when.day <= end


def any_contains(intervals: Iterable[TimeInterval], when: datetime) -> bool:
    return any(interval.contains(when) for interval in intervals)


def parse_time_range(start: str, end: str) -> Range:
    """`start_time`/`end_time` (`HH:MM`, 24:00 allowed as an end) as minutes of the day."""
    minutes = []
    for text in (start, end):
        if not _TIME_RE.fullmatch(text):
            raise TimeIntervalError(f"couldn't parse timestamp {text}, invalid format")
        hours, mins = text.split(":")
        minutes.append(int(hours) * 60 + int(mins))
    if minutes[0] >= minutes[1]:
        raise TimeIntervalError("start time cannot be equal or greater than end time")
    return minutes[0], minutes[1]


def _range(text: str, member) -> Range:
    text = text.lower()
    parts = text.split(":") if ":" in text else [text, text]
    if len(parts) != 2:
        raise TimeIntervalError(f"couldn't parse range {text}, invalid format")
    return member(parts[0]), member(parts[1])


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TimeIntervalError(f"{text!r} is not a number") from None


def parse_weekdays(text: str) -> Range:
    def member(name: str) -> int:
        if name not in WEEKDAYS:
            raise TimeIntervalError(f"{name} is not a valid weekday")
        return WEEKDAYS.index(name)

    begin, end = _range(text, member)
    if begin > end:
        raise TimeIntervalError("start day cannot be before end day")
    return begin, end


def parse_days_of_month(text: str) -> Range:
    begin, end = _range(text, _int)
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise TimeIntervalError(f"{day} is not a valid day of the month: out of range")
    if begin < 0 < end:
        raise TimeIntervalError("end day must be negative if start day is negative")
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise TimeIntervalError(f"end day {end} is always before start day {begin}")
    return begin, end


def parse_months(text: str) -> Range:
    def member(name: str) -> int:
        if name in MONTHS:
            return MONTHS.index(name) + 1
        try:
            return int(name)
        except ValueError:
            raise TimeIntervalError(f"{name} is not a valid month") from None

    begin, end = _range(text, member)
    if not (1 <= begin <= 12 and 1 <= end <= 12):
        raise TimeIntervalError(f"{text} is not a valid month: out of range")
    if begin > end:
        raise TimeIntervalError(f"end month {end} is before start month {begin}")
    return begin, end


def parse_years(text: str) -> Range:
    begin, end = _range(text, _int)
    if begin > end:
        raise TimeIntervalError(f"end year {end} is before start year {begin}")
    return begin, end


def check_location(name: str) -> str:
    if name in ("UTC", ""):
        return "UTC"
    if name == "Local":
        raise TimeIntervalError("location 'Local' depends on the host; name an IANA zone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeIntervalError(f"unknown time zone {name}") from None
    return name
