"""Time intervals held to a real Alertmanager 0.25: which routes it notifies now.

Intervals are built around the current instant in several zones (a weekday, a negative day of
month, a month, a year and an hour that hold now, and ones that do not). Each interval mutes one
route and activates another; one alert per route goes to Alertmanager, whose webhooks post to a
local sink. The routes it notifies must be those `route_is_muted` leaves unmuted.
"""

from __future__ import annotations

import calendar
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitoring.notify.config import config_load
from monitoring.notify.routing import Route, route_is_muted
from monitoring.notify.timeintervals import WEEKDAYS
from tests.monitoring.notify.real_alertmanager import call
from tests.wait import wait_for

ZONES = ["UTC", "Asia/Tehran", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


def intervals_around(now: datetime) -> dict[str, str]:
    """Interval name → its YAML body, half holding `now`, half not, margins of minutes."""
    out: dict[str, str] = {}
    for zone in ZONES:
        local = now.astimezone(ZoneInfo(zone))
        minutes_to_midnight = (24 - local.hour) * 60 - local.minute
        if minutes_to_midnight < 5 or local.hour * 60 + local.minute < 5:
            continue  # the date may change while the test runs
        tag = zone.replace("/", "_").lower()
        loc = f"location: {zone}"
        days = calendar.monthrange(local.year, local.month)[1]
        today_negative = local.day - days - 1
        tomorrow = WEEKDAYS[(local.weekday() + 2) % 7]
        out |= {
            f"{tag}-weekday-in": f"weekdays: [{WEEKDAYS[(local.weekday() + 1) % 7]}], {loc}",
            f"{tag}-weekday-out": f"weekdays: [{tomorrow}], {loc}",
            f"{tag}-negday-in": f"days_of_month: ['{today_negative}:-1'], {loc}",
            f"{tag}-month-out": f"months: ['{local.month % 12 + 1}'], {loc}",
            f"{tag}-year-in": f"years: ['{local.year}:{local.year + 1}'], months: ['{local.month}']"
            f", {loc}",
            f"{tag}-year-out": f"years: ['{local.year + 1}'], {loc}",
        }
        if today_negative < -1:
            out[f"{tag}-negday-out"] = f"days_of_month: ['{today_negative + 1}:-1'], {loc}"
        if 5 <= local.minute <= 54:
            start, end = f"{local.hour:02d}:00", f"{local.hour + 1:02d}:00"
            out[f"{tag}-hour-in"] = f"times: [{{start_time: '{start}', end_time: '{end}'}}], {loc}"
            if local.hour < 23:
                later = f"{local.hour + 1:02d}:00"
                out[f"{tag}-hour-out"] = (
                    f"times: [{{start_time: '{later}', end_time: '24:00'}}], {loc}"
                )
    return out


class Sink:
    """A webhook receiver recording the `receiver` of every notification posted to it."""

    def __init__(self) -> None:
        self.receivers: set[str] = set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sink.receivers.add(body["receiver"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


def test_mute_and_active_intervals_agree_with_alertmanager(alertmanager, sink, tmp_path: Path):
    now = datetime.now(UTC)
    intervals = intervals_around(now)
    assert len(intervals) >= 20
    names = sorted(intervals)
    lines = ["route:", "  receiver: none", "  group_by: [case]", "  group_wait: 0s", "  routes:"]
    receivers = ["receivers:", "  - name: none"]
    for name in names:
        for kind in ("mute", "active"):
            lines += [
                f"    - matchers: [case={kind}-{name}]",
                f"      receiver: {kind}-{name}",
                f"      {kind}_time_intervals: [{name}]",
            ]
            receivers += [
                f"  - name: {kind}-{name}",
                f"    webhook_configs: [{{url: '{sink.url}'}}]",
            ]
    lines += ["time_intervals:"] + [
        f"  - name: {name}\n    time_intervals: [{{{intervals[name]}}}]" for name in names
    ]
    path = tmp_path / "intervals.yml"
    path.write_text("\n".join(lines + receivers) + "\n")

    config = config_load(path, env={})
    route = Route.build(config.route)
    expected = set()
    for name in names:
        for kind in ("mute", "active"):
            [leaf] = route.match({"case": f"{kind}-{name}"})
            if not route_is_muted(leaf, now, config.time_intervals):
                expected.add(f"{kind}-{name}")
    # As built: an interval holding now mutes its mute route and lets its active route send.
    assert expected == {f"mute-{n}" for n in names if n.endswith("-out")} | {
        f"active-{n}" for n in names if n.endswith("-in")
    }

    url = alertmanager(path)
    ends = (now + timedelta(hours=1)).isoformat()
    call(
        f"{url}/api/v2/alerts",
        [
            {"labels": {"alertname": "T", "case": f"{kind}-{name}"}, "endsAt": ends}
            for name in names
            for kind in ("mute", "active")
        ],
    )
    try:
        wait_for(lambda: sink.receivers == expected, 60, "the notifications", interval=0.1)
    except AssertionError:
        assert sink.receivers == expected
