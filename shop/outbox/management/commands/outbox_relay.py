"""`manage.py outbox_relay [--once]`: relay outbox jobs from the command line (a backlog left
while no web process ran, or a supervisor that prefers a separate relay process)."""

import time

from django.core.management.base import BaseCommand

from shop.outbox.relay import relay_all


class Command(BaseCommand):
    help = "Hand pending outbox jobs to Celery (or run them in-process without Redis)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between passes")

    def handle(self, *args, once: bool = False, interval: float = 2.0, **options) -> None:
        while True:
            handed = relay_all()
            if once:
                self.stdout.write(f"{handed} job(s) handed over")
                return
            time.sleep(interval)
