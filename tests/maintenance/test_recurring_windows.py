"""The recurring maintenance windows of the shipped alertmanager.yml.

1. The shipped windows themselves, at fixed instants inside and outside each: which routes
   (receivers) they mute for a planned warning, and that critical alerts and the dashboard are
   never muted (timeintervals.py, whose agreement with Alertmanager's semantics field by field
   is tests/monitoring/notify/test_timeintervals_alertmanager.py).
2. The same file in a real Alertmanager 0.25 and in the embedded notifier: Alertmanager runs on
   the wall clock (faketime does not move a Go binary's clock), so the test derives a copy whose
   window definitions are rewritten to hold now, or not (same routes, same mute references,
   receivers pointed at a local webhook sink, group_wait 0s), posts the same alerts to both and
   requires both to deliver to exactly the same receivers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from monitoring.monitor.api import api_server_start
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from monitoring.notify.config import config_load
from monitoring.notify.routing import Route, route_is_muted
from monitoring.notify.timeintervals import WEEKDAYS, any_contains
from monitoring.notify.windows import next_start, windows_report
from tests.monitoring.notify.real_alertmanager import alertmanager, call  # noqa: F401
from tests.monitoring.notify.test_amtool_agreement import SHIPPED, shipped_rule_labels
from tests.services import require_alertmanager
from tests.wait import wait_for

TEHRAN = ZoneInfo("Asia/Tehran")
WINDOWS = ("weekly-database-maintenance", "monthly-security-patches", "quarterly-upgrades")


def tehran(*args: int) -> datetime:
    return datetime(*args, tzinfo=TEHRAN)


# (instant, the windows holding then)
INSTANTS = [
    (tehran(2026, 12, 4, 4, 0), {"weekly-database-maintenance"}),  # first Friday, not a quarter
    (tehran(2026, 12, 4, 3, 0), {"weekly-database-maintenance"}),  # start is inclusive
    (tehran(2026, 12, 4, 5, 0), set()),  # end is exclusive
    (tehran(2026, 12, 4, 2, 59), set()),
    (tehran(2026, 12, 3, 4, 0), set()),  # a Thursday
    (tehran(2026, 12, 18, 4, 0), {"weekly-database-maintenance", "monthly-security-patches"}),
    (tehran(2026, 12, 18, 5, 30), {"monthly-security-patches"}),  # third Friday
    (tehran(2026, 12, 11, 5, 30), set()),  # second Friday
    (tehran(2027, 1, 1, 7, 0), {"quarterly-upgrades"}),  # first Friday of January
    (tehran(2027, 1, 1, 4, 0), {"quarterly-upgrades", "weekly-database-maintenance"}),
    (tehran(2027, 4, 2, 2, 0), {"quarterly-upgrades"}),
    (tehran(2027, 1, 8, 7, 0), set()),  # second Friday of January
    (tehran(2027, 2, 5, 7, 0), set()),  # first Friday of February
]


@pytest.fixture(scope="module")
def shipped():
    return config_load(SHIPPED, env={})


@pytest.mark.parametrize("when, holding", INSTANTS, ids=[str(i[0]) for i in INSTANTS])
def test_the_shipped_windows_hold_at_their_times(shipped, when, holding):
    assert set(shipped.time_intervals) == set(WINDOWS)
    found = {n for n, i in shipped.time_intervals.items() if any_contains(i, when)}
    assert found == holding
    # The zone is the file's, not the host's: the same instant in UTC gives the same answer.
    utc = when.astimezone(UTC)
    assert {n for n, i in shipped.time_intervals.items() if any_contains(i, utc)} == holding
    assert all(i.location == "Asia/Tehran" for ii in shipped.time_intervals.values() for i in ii)


def muted_receivers(config, labels: dict[str, str], when: datetime) -> set[str]:
    route = Route.build(config.route)
    return {
        r.options.receiver
        for r in route.match(labels)
        if route_is_muted(r, when, config.time_intervals)
    }


def test_each_window_mutes_its_planned_warnings_and_nothing_that_pages(shipped):
    db = tehran(2026, 12, 4, 4, 0)
    patches = tehran(2026, 12, 18, 5, 30)
    upgrade = tehran(2027, 1, 1, 7, 0)
    outside = tehran(2026, 12, 3, 4, 0)
    slow = {"alertname": "SlowQueries", "severity": "warning", "team": "development"}
    cpu = {"alertname": "HighCpuUsage", "severity": "warning", "team": "devops"}
    response = {"alertname": "SlowResponseTime", "severity": "warning", "team": "development"}
    assert muted_receivers(shipped, slow, db) == {"slack-warnings", "email-development"}
    assert muted_receivers(shipped, slow, patches) == set()  # only the DB window's (and 04:00)
    assert muted_receivers(shipped, cpu, db) == set()
    assert muted_receivers(shipped, cpu, patches) == {"slack-warnings", "email-devops"}
    assert muted_receivers(shipped, response, db) == set()
    assert muted_receivers(shipped, response, upgrade) == {"slack-warnings", "email-development"}
    for labels in (slow, cpu, response):
        assert muted_receivers(shipped, labels, outside) == set()
    # Every shipped alert: criticals are never muted, the dashboard never, in any window.
    for labels in shipped_rule_labels():
        for when in (db, patches, upgrade):
            muted = muted_receivers(shipped, labels, when)
            assert "dashboard" not in muted
            if labels.get("severity") != "warning":
                assert muted == set(), labels


def test_the_windows_name_only_shipped_warnings(shipped):
    """A renamed rule would silently fall out of its window: each name the windows' routes
    match is a shipped alert of severity warning."""
    warnings = {r["alertname"] for r in shipped_rule_labels() if r.get("severity") == "warning"}
    named = set()
    for route in Route.build(shipped.route).walk():
        if route.options.mute_time_intervals:
            for m in route.matchers.items:
                if m.name == "alertname":
                    named |= set(m.value.split("|"))
    assert named and named <= warnings, named - warnings


def test_next_start_and_the_report(shipped):
    thursday = tehran(2026, 12, 3, 12, 0)
    db = shipped.time_intervals["weekly-database-maintenance"]
    assert next_start(db, thursday) == tehran(2026, 12, 4, 3, 0)
    quarterly = shipped.time_intervals["quarterly-upgrades"]
    assert next_start(quarterly, thursday) == tehran(2027, 1, 1, 2, 0)
    firing = {"status": {"state": "active", "silencedBy": []}}
    alerts = [
        {"labels": {"alertname": "SlowQueries", "severity": "warning", "team": "development"}}
        | firing,
        {"labels": {"alertname": "DatabaseDown", "severity": "critical", "team": "devops"}}
        | firing,
    ]
    report = windows_report(shipped, alerts, [], tehran(2026, 12, 4, 4, 0))
    by_name = {w["name"]: w for w in report["recurring"]}
    weekly = by_name["weekly-database-maintenance"]
    assert weekly["active"] and weekly["next_start"] is None
    assert weekly["mutes"] == [
        {"labels": alerts[0]["labels"], "receivers": ["email-development", "slack-warnings"]}
    ]
    assert len(weekly["routes"]) == 3
    assert by_name["monthly-security-patches"]["mutes"] == []
    assert (
        by_name["monthly-security-patches"]["next_start"] == "2026-12-17T23:30:00Z"
    )  # 03:00 Tehran


# -- the same file in a real Alertmanager and in the embedded notifier ---------------------


class Sink(ThreadingHTTPServer):
    """Records (receiver, alertname) of every webhook notification posted to /hook/<receiver>."""

    daemon_threads = True
    # A burst of notifications opens many connections at once: Python's default listen backlog
    # of 5 drops the rest's SYNs, which the kernel resends after 1, 3, 7… s (a burst of 40 took
    # over 30 s on a loaded machine).
    request_queue_size = 1024

    def __init__(self) -> None:
        sink = self
        self.got: set[tuple[str, str]] = set()
        self.log: list[tuple[str, str, str]] = []  # (receiver, alertname, status) in order

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver = self.path.rsplit("/", 1)[-1]
                for alert in body["alerts"]:
                    sink.got.add((receiver, alert["labels"]["alertname"]))
                    sink.log.append((receiver, alert["labels"]["alertname"], alert["status"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def derived(now: datetime, inside: bool, sink_url: str, group_interval: str = "") -> str:
    """The shipped file with each window rewritten to hold at `now` (or not), its receivers
    webhooks to the sink and the first notification sent at once; routes untouched."""
    doc = yaml.safe_load(SHIPPED.read_text())
    zone = TEHRAN
    local = now.astimezone(zone)
    if local.hour * 60 + local.minute < 5 or local.hour * 60 + local.minute > 24 * 60 - 5:
        zone, local = ZoneInfo("UTC"), now.astimezone(UTC)  # far from Tehran's midnight
    today = WEEKDAYS[(local.weekday() + 1) % 7]
    other = WEEKDAYS[(local.weekday() + 4) % 7]
    for interval in doc["time_intervals"]:
        interval["time_intervals"] = [
            {"weekdays": [today if inside else other], "location": str(zone)}
        ]
    doc["route"]["group_wait"] = "0s"
    if group_interval:
        doc["route"]["group_interval"] = group_interval
    doc["global"] = {"resolve_timeout": "5m"}
    doc.pop("templates", None)
    doc["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{sink_url}/hook/{r['name']}"}]}
        for r in doc["receivers"]
    ]
    return yaml.safe_dump(doc, sort_keys=False)


ALERTS = [
    {"alertname": "SlowQueries", "severity": "warning", "team": "development"},  # planned
    {"alertname": "HighCpuUsage", "severity": "warning", "team": "devops"},  # planned
    {"alertname": "BackupTooOld", "severity": "warning", "team": "devops"},  # in no window
    {"alertname": "DatabaseDown", "severity": "critical", "team": "devops"},  # pages
]


def expected(path: Path, now: datetime) -> set[tuple[str, str]]:
    config = config_load(path, env={})
    route = Route.build(config.route)
    return {
        (r.options.receiver, labels["alertname"])
        for labels in ALERTS
        for r in route.match(labels)
        if not route_is_muted(r, now, config.time_intervals)
    }


def delivered(sink: Sink, want: set) -> set:
    """What the sink got once `want` arrived, watched a further 3 s: a muted route would have
    been flushed together with the others (group_wait 0s), so a late extra shows by then."""
    wait_for(lambda: want <= sink.got, 60, f"notifications {want - sink.got}", interval=0.05)
    settle = time.monotonic() + 3
    while time.monotonic() < settle and sink.got == want:
        time.sleep(0.05)
    return set(sink.got)


@pytest.fixture
def embedded(tmp_path):
    started = []

    def start(config: Path) -> str:
        (tmp_path / "prometheus.yml").write_text("scrape_configs: []\n")
        env = {"MONITOR_STATE_PATH": str(tmp_path / "state.sqlite3"), "NOTIFY_CONFIG": str(config)}
        monitor = Monitor(config_path=tmp_path / "prometheus.yml", settings=settings_from_env(env))
        server = api_server_start(monitor, host="127.0.0.1", port=0)
        monitor.start()
        started.append((monitor, server))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for monitor, server in started:
        server.shutdown()
        server.server_close()
        monitor.stop()


@pytest.mark.parametrize("inside", [True, False], ids=["inside", "outside"])
def test_alertmanager_and_the_notifier_mute_the_same(alertmanager, embedded, tmp_path, inside):  # noqa: F811
    now = datetime.now(UTC)
    sinks = {"alertmanager": Sink(), "embedded": Sink()}
    try:
        urls = {}
        for name, sink in sinks.items():
            path = tmp_path / f"{name}.yml"
            path.write_text(derived(now, inside, sink.url))
            check = subprocess.run(
                [shutil.which("amtool"), "check-config", str(path)], capture_output=True, text=True
            )
            assert check.returncode == 0, check.stdout + check.stderr
            urls[name] = (alertmanager if name == "alertmanager" else embedded)(path)
        want = expected(tmp_path / "alertmanager.yml", now)
        planned = {("slack-warnings", "SlowQueries"), ("email-development", "SlowQueries")}
        planned |= {("slack-warnings", "HighCpuUsage"), ("email-devops", "HighCpuUsage")}
        assert planned.isdisjoint(want) if inside else planned <= want
        assert ("oncall", "DatabaseDown") in want and ("slack-warnings", "BackupTooOld") in want
        ends = (now + timedelta(hours=1)).isoformat()
        body = [{"labels": labels, "endsAt": ends} for labels in ALERTS]
        for url in urls.values():
            httpx.post(f"{url}/api/v2/alerts", json=body, timeout=30).raise_for_status()
        got = {name: delivered(sink, want) for name, sink in sinks.items()}
        assert got["alertmanager"] == want
        assert got["embedded"] == want
        # The embedded notifier's /api/v2/windows says what each window mutes right now.
        report = call(f"{urls['embedded']}/api/v2/windows")
        for window in report["recurring"]:
            assert window["active"] is inside
            muted = {m["labels"]["alertname"] for m in window["mutes"]}
            if window["name"] == "weekly-database-maintenance":
                assert muted == ({"SlowQueries"} if inside else set())
            if window["name"] == "monthly-security-patches":
                assert muted == ({"HighCpuUsage"} if inside else set())
    finally:
        for sink in sinks.values():
            sink.shutdown()
            sink.server_close()


def test_amtool_routes_the_planned_warning_as_the_notifier_does(shipped):
    """`amtool config routes test` on the shipped file sends the planned warning where our
    router does (the mute routes are leaves it names by receiver)."""
    require_alertmanager()
    route = Route.build(shipped.route)
    for labels in ALERTS:
        args = [f"{k}={v}" for k, v in labels.items()]
        done = subprocess.run(
            [shutil.which("amtool"), "config", "routes", "test", f"--config.file={SHIPPED}", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        assert re.split(r",\s*", done.stdout.strip()) == route.receivers(labels)
