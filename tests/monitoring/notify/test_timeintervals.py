"""Time intervals as Alertmanager 0.25 evaluates them (timeinterval.ContainsTime)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitoring.notify.config import config_load
from monitoring.notify.routing import Route, route_is_muted
from monitoring.notify.timeintervals import (
    TimeInterval,
    TimeIntervalError,
    parse_days_of_month,
    parse_months,
    parse_time_range,
    parse_weekdays,
    parse_years,
)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_times_are_half_open_minutes() -> None:
    ti = TimeInterval(times=(parse_time_range("09:00", "17:30"),))
    assert ti.contains(at(2026, 5, 4, 9, 0))
    assert ti.contains(at(2026, 5, 4, 17, 29, 59))
    assert not ti.contains(at(2026, 5, 4, 17, 30))
    assert not ti.contains(at(2026, 5, 4, 8, 59))
    assert TimeInterval(times=(parse_time_range("22:00", "24:00"),)).contains(
        at(2026, 5, 4, 23, 59)
    )


def test_location_converts_before_comparing() -> None:
    # 09:00–17:30 Monday–Friday in Tehran (UTC+03:30, no DST since 2022).
    ti = TimeInterval(
        times=(parse_time_range("09:00", "17:30"),),
        weekdays=(parse_weekdays("monday:friday"),),
        location="Asia/Tehran",
    )
    assert ti.contains(at(2026, 5, 4, 5, 30))  # Monday 09:00 in Tehran
    assert not ti.contains(at(2026, 5, 4, 5, 29))
    assert ti.contains(at(2026, 5, 8, 13, 59))  # Friday 17:29 in Tehran
    assert not ti.contains(at(2026, 5, 8, 14, 0))  # Friday 17:30 in Tehran
    # Weekdays are read in the location too: Sunday 21:00 UTC is Monday 00:30 in Tehran.
    assert TimeInterval(weekdays=(parse_weekdays("monday"),), location="Asia/Tehran").contains(
        at(2026, 5, 3, 21, 0)
    )
    assert not TimeInterval(weekdays=(parse_weekdays("monday"),)).contains(at(2026, 5, 3, 21, 0))
    # The instant's own offset does not matter, only the interval's location.
    plus_five = timezone(timedelta(hours=5))
    assert ti.contains(datetime(2026, 5, 4, 10, 30, tzinfo=plus_five))


def test_negative_days_count_from_the_month_end() -> None:
    last_week = TimeInterval(days_of_month=(parse_days_of_month("-7:-1"),))
    assert last_week.contains(at(2026, 2, 22))  # February 2026 has 28 days
    assert not last_week.contains(at(2026, 2, 21))
    assert last_week.contains(at(2024, 2, 23))  # a leap year: 29 days
    assert not last_week.contains(at(2024, 2, 22))
    assert last_week.contains(at(2026, 1, 31)) and not last_week.contains(at(2026, 1, 24))
    last_day = TimeInterval(days_of_month=(parse_days_of_month("-1"),))
    assert last_day.contains(at(2026, 4, 30)) and not last_day.contains(at(2026, 4, 29))
    # A positive start beyond the month's length never matches; an end beyond is clamped.
    assert not TimeInterval(days_of_month=(parse_days_of_month("30:31"),)).contains(at(2026, 2, 28))
    assert TimeInterval(days_of_month=(parse_days_of_month("27:31"),)).contains(at(2026, 2, 28))
    assert TimeInterval(days_of_month=(parse_days_of_month("1:-1"),)).contains(at(2026, 2, 15))


def test_months_years_weekdays_and_conjunction() -> None:
    ti = TimeInterval(
        months=(parse_months("january:march"), parse_months("12")),
        years=(parse_years("2025:2030"),),
        weekdays=(parse_weekdays("saturday"), parse_weekdays("sunday")),
    )
    assert ti.contains(at(2026, 1, 3))  # a Saturday in January 2026
    assert not ti.contains(at(2026, 1, 5))  # a Monday
    assert not ti.contains(at(2026, 4, 4))  # a Saturday in April
    assert not ti.contains(at(2031, 1, 4))  # a Saturday, but 2031
    assert ti.contains(at(2026, 12, 6))
    assert TimeInterval().contains(at(2026, 7, 1))  # no field: always


@pytest.mark.parametrize(
    "parse, text, problem",
    [
        (parse_weekdays, "friday:monday", "start day cannot be before end day"),
        (parse_weekdays, "funday", "not a valid weekday"),
        (parse_days_of_month, "0", "out of range"),
        (parse_days_of_month, "-3:5", "end day must be negative"),
        (parse_days_of_month, "-1:-7", "always before start day"),
        (parse_days_of_month, "32", "out of range"),
        (parse_months, "march:january", "before start month"),
        (parse_months, "13", "out of range"),
        (parse_years, "2030:2025", "before start year"),
    ],
)
def test_ranges_refused(parse, text: str, problem: str) -> None:
    with pytest.raises(TimeIntervalError, match=problem):
        parse(text)


@pytest.mark.parametrize(
    "start, end", [("9:00", "10:00"), ("10:00", "10:00"), ("11:00", "10:00"), ("24:01", "24:00")]
)
def test_times_refused(start: str, end: str) -> None:
    with pytest.raises(TimeIntervalError):
        parse_time_range(start, end)


def test_routes_mute_and_activate_by_named_intervals(tmp_path) -> None:
    path = tmp_path / "am.yml"
    path.write_text(
        """
route:
  receiver: r
  routes:
    - matchers: [a="1"]
      receiver: r
      mute_time_intervals: [weekend]
      routes:
        - matchers: [b="1"]
    - matchers: [a="2"]
      receiver: r
      active_time_intervals: [office]
time_intervals:
  - name: weekend
    time_intervals: [{weekdays: [saturday, sunday]}]
  - name: office
    time_intervals: [{times: [{start_time: '09:00', end_time: '17:00'}], location: Asia/Tehran}]
receivers: [{name: r}]
"""
    )
    config = config_load(path, env={})
    route = Route.build(config.route)
    saturday_noon, monday_noon = at(2026, 5, 2, 12, 0), at(2026, 5, 4, 12, 0)
    [muted] = route.match({"a": "1"})
    assert route_is_muted(muted, saturday_noon, config.time_intervals)
    assert not route_is_muted(muted, monday_noon, config.time_intervals)
    # Mute intervals are not inherited (dispatch/route.go sets them per route).
    [child] = route.match({"a": "1", "b": "1"})
    assert not route_is_muted(child, saturday_noon, config.time_intervals)
    [active] = route.match({"a": "2"})
    assert not route_is_muted(active, at(2026, 5, 4, 6, 0), config.time_intervals)  # 09:30
    assert route_is_muted(active, at(2026, 5, 4, 14, 0), config.time_intervals)  # 17:30
