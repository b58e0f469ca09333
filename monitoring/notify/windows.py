"""Maintenance windows and what each mutes, from what any Alertmanager API v2 shows.

Two kinds of window: the recurring ones, the configuration's `time_intervals` named in routes'
`mute_time_intervals` (muting a route's notifications while they hold), and the one-off ones,
silences (muting every alert they match). `windows_report` takes the configuration, the
API's alerts (`/api/v2/alerts`) and silences (`/api/v2/silences`) as JSON, so the same answer
comes from the monitor (its `/api/v2/windows`) and, through `manage.py maintenance windows`,
from a real Alertmanager.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from monitoring.notify.config import Config
from monitoring.notify.routing import Route
from monitoring.notify.timeintervals import TimeInterval, any_contains

__all__ = ["next_start", "windows_report"]

# How far ahead the next start of a recurring window is looked for (a quarter and a bit).
HORIZON = timedelta(days=100)


def next_start(
    intervals: Iterable[TimeInterval], after: datetime, horizon: timedelta = HORIZON
) -> datetime | None:
    """The first minute after `after` at which the window holds having not held the minute
    before (None beyond `horizon`); intervals hold whole minutes, so minute steps are exact."""
    intervals = list(intervals)
    when = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    was = any_contains(intervals, when - timedelta(minutes=1))
    end = after + horizon
    while when <= end:
        now_in = any_contains(intervals, when)
        if now_in and not was:
            return when
        was = now_in
        when += timedelta(minutes=1)
    return None


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None


def _firing(alerts: Iterable[Mapping]) -> list[Mapping]:
    return [a for a in alerts if a.get("status", {}).get("state") in ("active", "suppressed")]


def _recurring(config: Config, route: Route, alerts: list[Mapping], now: datetime) -> list[dict]:
    out = []
    for name, intervals in sorted(config.time_intervals.items()):
        routes = [r for r in route.walk() if name in r.options.mute_time_intervals]
        active = any_contains(intervals, now)
        mutes = []
        if active:
            for alert in alerts:
                muted = sorted(
                    {r.options.receiver for r in route.match(alert["labels"]) if r in routes}
                )
                if muted:
                    mutes.append({"labels": dict(alert["labels"]), "receivers": muted})
        out.append(
            {
                "name": name,
                "active": active,
                "next_start": _iso(None if active else next_start(intervals, now)),
                "routes": [f"{r.key()} -> {r.options.receiver}" for r in routes],
                "mutes": mutes,
            }
        )
    return out


def _matchers_text(silence: Mapping) -> str:
    ops = {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}
    parts = [
        f'{m["name"]}{ops[(m.get("isEqual", True), m["isRegex"])]}"{m["value"]}"'
        for m in silence["matchers"]
    ]
    return "{" + ", ".join(parts) + "}"


def _one_off(silences: Iterable[Mapping], alerts: list[Mapping]) -> list[dict]:
    out = []
    for silence in silences:
        state = silence["status"]["state"]
        if state == "expired":
            continue
        out.append(
            {
                "id": silence["id"],
                "state": state,
                "createdBy": silence["createdBy"],
                "comment": silence["comment"],
                "startsAt": silence["startsAt"],
                "endsAt": silence["endsAt"],
                "matchers": _matchers_text(silence),
                "mutes": [
                    dict(a["labels"])
                    for a in alerts
                    if silence["id"] in a.get("status", {}).get("silencedBy", [])
                ],
            }
        )
    return out


def windows_report(
    config: Config, alerts: Iterable[Mapping], silences: Iterable[Mapping], now: datetime
) -> dict:
    """{"at", "recurring": [...], "silences": [...]}: every recurring window (active now, its
    next start, the routes it mutes and the firing alerts it mutes now, with the receivers
    they are kept from) and every active or pending silence (author, comment, the alerts it
    mutes)."""
    firing = _firing(alerts)
    route = Route.build(config.route)
    return {
        "at": _iso(now),
        "recurring": _recurring(config, route, firing, now),
        "silences": _one_off(silences, firing),
    }
