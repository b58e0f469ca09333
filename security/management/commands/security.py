"""`manage.py security blocks | unblock IP | events [--type T] [--limit N] | baseline --reason R
| check`: the operator's side of the security monitoring (docs/security.md)."""

from __future__ import annotations

import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from security import blocks, integrity
from security.events import TYPES


class Command(BaseCommand):
    help = "Blocked addresses, security events and the file integrity baseline."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("blocks", help="addresses blocked now")
        unblock = sub.add_parser("unblock", help="lift an address's block")
        unblock.add_argument("ip")
        events = sub.add_parser("events", help="the newest security events")
        events.add_argument("--type", choices=TYPES)
        events.add_argument("--limit", type=int, default=50)
        baseline = sub.add_parser("baseline", help="accept the critical files as they are now")
        baseline.add_argument("--reason", required=True, help="why (logged with the event)")
        sub.add_parser("check", help="compare the critical files with the baseline")

    def handle(self, *args, action: str, **options) -> None:
        operator = f"cli:{getpass.getuser()}"
        if action == "blocks":
            for b in blocks.active():
                self.stdout.write(f"{b.ip}\tuntil {b.until.isoformat()}\t{b.reason}")
        elif action == "unblock":
            if not blocks.unblock(options["ip"], actor=operator):
                raise CommandError(f"{options['ip']} is not blocked")
            self.stdout.write(f"unblocked {options['ip']}")
        elif action == "events":
            from security.models import SecurityEvent

            query = SecurityEvent.objects.all()
            if options["type"]:
                query = query.filter(type=options["type"])
            for e in query[: options["limit"]]:
                detail = json.dumps(e.detail, sort_keys=True)
                self.stdout.write(
                    f"{e.at.isoformat()}\t{e.type}\t{e.ip or '-'}\t{e.username or '-'}"
                    f"\t{e.actor or '-'}\t{detail}"
                )
        elif action == "baseline":
            count = integrity.baseline(actor=operator, reason=options["reason"])
            self.stdout.write(f"baseline: {count} files")
        elif action == "check":
            changes = integrity.check()
            for c in changes:
                self.stdout.write(f"{c['change']}\t{c['path']}")
            if changes:
                raise CommandError(f"{len(changes)} critical files differ from the baseline")
            self.stdout.write("no change since the baseline")
