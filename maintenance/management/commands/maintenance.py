"""`manage.py maintenance start|end|status|windows`: the maintenance procedures
(maintenance/procedure.py) and the maintenance windows with the alerts each mutes.

  start [--author A] [--reason R] [--duration 2h] [--retry-after S] [--staff USER]
        [--mute ALERTNAME ...] [--backup-dir DIR]
  end   [--author A]
  status                    the procedure's state and its report's path
  windows [--json]          recurring windows (time intervals) and silences, what each mutes

The shop is reached at --shop-url (APP_URL, else http://$BIND, else http://127.0.0.1:8000);
the notifier at --alertmanager-url (ALERTMANAGER_URL, else the monitor's MONITOR_LISTEN) with
MONITOR_TOKEN (else MONITORING_TOKEN).
"""

from __future__ import annotations

import getpass
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from maintenance import procedure
from maintenance.alertmanager import (
    Alertmanager,
    AlertmanagerError,
    default_token,
    default_url,
)
from maintenance.mode import DEFAULT_RETRY_AFTER
from monitoring.notify.windows import windows_report


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", text)
    if not match:
        raise CommandError(f"--duration {text!r}: expected a number and m, h or d (e.g. 2h)")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def _shop_url() -> str:
    return os.environ.get("APP_URL") or "http://" + (os.environ.get("BIND") or "127.0.0.1:8000")


class Command(BaseCommand):
    help = "Run the maintenance procedures (start, end), show their status or the windows."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["start", "end", "status", "windows"])
        parser.add_argument("--author", default="", help="who runs it (default: the OS user)")
        parser.add_argument("--reason", default="planned maintenance")
        parser.add_argument("--duration", default="2h", help="the window's length (e.g. 90m)")
        parser.add_argument("--retry-after", type=int, default=DEFAULT_RETRY_AFTER)
        parser.add_argument("--staff", default="", help="staff user the smoke tests act as")
        parser.add_argument("--mute", action="append", default=[], metavar="ALERTNAME")
        parser.add_argument("--backup-dir", type=Path, default=None)
        parser.add_argument("--shop-url", default=None)
        parser.add_argument("--alertmanager-url", default=None)
        parser.add_argument("--json", action="store_true", help="windows: as JSON")

    def handle(self, *args, action: str, **o) -> None:
        am = Alertmanager(o["alertmanager_url"] or default_url(), default_token())
        if action == "status":
            return self._status()
        if action == "windows":
            return self._windows(am, o["json"])
        options = procedure.Options(
            author=o["author"] or (getpass.getuser() if action == "start" else ""),
            reason=o["reason"],
            shop_url=o["shop_url"] or _shop_url(),
            alertmanager=am,
            duration=_duration(o["duration"]),
            retry_after=o["retry_after"],
            backup_dir=o["backup_dir"],
            staff=o["staff"],
            planned=tuple(o["mute"]) or procedure.PLANNED_ALERTS,
        )
        run = procedure.start if action == "start" else procedure.end
        try:
            state = run(options, progress=lambda line: self.stdout.write(f"  ok  {line}"))
        except procedure.ProcedureError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"maintenance {state['id']} {state['phase']}; report {procedure.report_path(state)}"
        )

    def _status(self) -> None:
        state = procedure.load_state()
        if state is None:
            self.stdout.write("no maintenance procedure has run")
            return
        self.stdout.write(
            f"maintenance {state['id']}: {state['phase']} (by {state['author']}: "
            f"{state['reason']}); report {procedure.report_path(state)}"
        )
        for step in state["steps"]:
            self.stdout.write(f"  {step['procedure']:5} {step['result']:6} {step['step']}")

    def _windows(self, am: Alertmanager, as_json: bool) -> None:
        try:
            report = windows_report(am.config(), am.alerts(), am.silences(), datetime.now(UTC))
        except AlertmanagerError as exc:
            raise CommandError(f"the notifier's API: {exc}") from None
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(f"maintenance windows at {report['at']}")
        for w in report["recurring"]:
            when = "ACTIVE now" if w["active"] else f"next {w['next_start'] or '(none in 100 d)'}"
            self.stdout.write(f"recurring {w['name']}: {when}")
            for route in w["routes"]:
                self.stdout.write(f"  mutes route {route}")
            for m in w["mutes"]:
                self.stdout.write(f"  muting {_labels(m['labels'])} on {', '.join(m['receivers'])}")
        for s in report["silences"]:
            self.stdout.write(
                f"silence {s['id']} ({s['state']}) by {s['createdBy']}, {s['startsAt']} to "
                f"{s['endsAt']}: {s['comment']}; matchers {s['matchers']}"
            )
            for labels in s["mutes"]:
                self.stdout.write(f"  muting {_labels(labels)}")
        if not report["silences"]:
            self.stdout.write("no one-off window (silence) active or pending")


def _labels(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
