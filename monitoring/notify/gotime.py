"""Go's ``time.Time`` and ``time.Duration`` as notification templates see them.

- ``GoTime(when)``: an aware datetime with the methods templates call (``Format`` with Go's
  reference layout ``Mon Jan 2 15:04:05 MST 2006``, ``Unix``, ``UTC``, ...); printed as Go's
  ``String()``: ``2026-12-04 22:00:00 +0000 UTC``. ``GoTime.zero()`` is Go's zero time.
- ``GoDuration(ms)``: printed as Go's ``Duration.String()`` (``1h2m3.5s``).
- ``go_time_format(when, layout)``: Go's ``Time.Format``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from monitoring.rules.gofmt import go_time_duration
from monitoring.rules.template import GoValue

__all__ = ["GoDuration", "GoTime", "go_time_format"]

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

# Go's layout elements, longest first where one is the prefix of another (nextStdChunk).
_CHUNK_RE = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|0[1-6]|15|__2|_2(?!006)|[1-5]|PM|pm"
    r"|-07:00:00|-070000|-07:00|-0700|-07|Z07:00:00|Z070000|Z07:00|Z0700|Z07"
    r"|[.,](?:0+|9+)(?!\d)"
)


def _offset(when: datetime, sep: str, seconds: bool, short: bool) -> str:
    total = int((when.utcoffset() or timedelta()).total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hh, mm, ss = total // 3600, total // 60 % 60, total % 60
    text = f"{sign}{hh:02d}"
    if not short:
        text += f"{sep}{mm:02d}"
        if seconds:
            text += f"{sep}{ss:02d}"
    return text


def _zone_name(when: datetime) -> str:
    name = when.tzname()
    if name and re.fullmatch(r"[A-Za-z]{3,}", name):
        return name
    # Go writes a zone without an abbreviation as its offset: "+0100".
    return _offset(when, "", False, False)


def _chunk(when: datetime, chunk: str, nanos: int) -> str:
    hour12 = when.hour % 12 or 12
    simple = {
        "January": _MONTHS[when.month - 1],
        "Jan": _MONTHS[when.month - 1][:3],
        "Monday": _DAYS[when.weekday()],
        "Mon": _DAYS[when.weekday()][:3],
        "MST": _zone_name(when) if when.tzinfo else "UTC",
        "2006": f"{when.year:04d}",
        "06": f"{when.year % 100:02d}",
        "01": f"{when.month:02d}",
        "1": str(when.month),
        "02": f"{when.day:02d}",
        "2": str(when.day),
        "_2": f"{when.day:2d}",
        "002": f"{when.timetuple().tm_yday:03d}",
        "__2": f"{when.timetuple().tm_yday:3d}",
        "15": f"{when.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{when.minute:02d}",
        "4": str(when.minute),
        "05": f"{when.second:02d}",
        "5": str(when.second),
        "PM": "PM" if when.hour >= 12 else "AM",
        "pm": "pm" if when.hour >= 12 else "am",
    }
    if chunk in simple:
        return simple[chunk]
    if chunk[0] in "-Z":
        if chunk[0] == "Z" and not when.utcoffset():
            return "Z"
        body = chunk[1:]
        return _offset(when, ":" if ":" in body else "", body.count("0") >= 4, body == "07")
    # A fraction of a second: .000 fixed width, .999 without trailing zeros (or nothing).
    digits = len(chunk) - 1
    fraction = f"{nanos:09d}"[:digits]
    if chunk[1] == "9":
        fraction = fraction.rstrip("0")
        return chunk[0] + fraction if fraction else ""
    return chunk[0] + fraction


def go_time_format(when: datetime, layout: str, nanos: int | None = None) -> str:
    nanos = when.microsecond * 1000 if nanos is None else nanos
    return _CHUNK_RE.sub(lambda m: _chunk(when, m.group(0), nanos), layout)


class GoDuration(GoValue):
    go_type = "time.Duration"
    go_methods = frozenset({"Seconds", "Minutes", "Hours", "String"})

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def Seconds(self) -> float:  # noqa: N802 (Go's method names)
        return self.ms / 1000

    def Minutes(self) -> float:  # noqa: N802
        return self.ms / 60_000

    def Hours(self) -> float:  # noqa: N802
        return self.ms / 3_600_000

    def String(self) -> str:  # noqa: N802
        return go_time_duration(self.ms)

    __str__ = String


class GoTime(GoValue):
    go_type = "time.Time"
    go_methods = frozenset(
        {
            "Format",
            "Unix",
            "UnixMilli",
            "UTC",
            "IsZero",
            "Year",
            "YearDay",
            "Day",
            "Hour",
            "Minute",
            "Second",
            "Sub",
            "Before",
            "After",
            "Equal",
            "String",
        }
    )

    def __init__(self, when: datetime, *, zero: bool = False) -> None:
        self.when = when
        self.zero = zero

    @classmethod
    def from_ms(cls, t_ms: int | None) -> GoTime:
        if t_ms is None:
            return cls.zero_time()
        return cls(datetime.fromtimestamp(t_ms / 1000, tz=UTC))

    @classmethod
    def zero_time(cls) -> GoTime:
        return cls(datetime(1, 1, 1, tzinfo=UTC), zero=True)

    @property
    def ms(self) -> int:
        return round(self.when.timestamp() * 1000)

    def in_zone(self, zone: tzinfo) -> GoTime:
        return GoTime(self.when.astimezone(zone), zero=self.zero)

    def Format(self, layout: str) -> str:  # noqa: N802 (Go's method names)
        return go_time_format(self.when, layout)

    def Unix(self) -> int:  # noqa: N802
        return int(self.when.timestamp() // 1)

    def UnixMilli(self) -> int:  # noqa: N802
        return self.ms

    def UTC(self) -> GoTime:  # noqa: N802
        return self.in_zone(UTC)

    def IsZero(self) -> bool:  # noqa: N802
        return self.zero

    def Year(self) -> int:  # noqa: N802
        return self.when.year

    def YearDay(self) -> int:  # noqa: N802
        return self.when.timetuple().tm_yday

    def Day(self) -> int:  # noqa: N802
        return self.when.day

    def Hour(self) -> int:  # noqa: N802
        return self.when.hour

    def Minute(self) -> int:  # noqa: N802
        return self.when.minute

    def Second(self) -> int:  # noqa: N802
        return self.when.second

    def Sub(self, other: GoTime) -> GoDuration:  # noqa: N802
        return GoDuration(self.ms - other.ms)

    def Before(self, other: GoTime) -> bool:  # noqa: N802
        return self.when < other.when

    def After(self, other: GoTime) -> bool:  # noqa: N802
        return self.when > other.when

    def Equal(self, other: GoTime) -> bool:  # noqa: N802
        return self.when == other.when

    def String(self) -> str:  # noqa: N802
        return self.Format("2006-01-02 15:04:05.999999999 -0700 MST")

    __str__ = String
