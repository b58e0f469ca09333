"""`manage.py maintenance_mode on|off|status [--retry-after SECONDS] [--message TEXT]`.

Switches the flag file every process of this host reads (maintenance.mode); the workers follow
within about a second, without a restart and without the database.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from maintenance import mode


class Command(BaseCommand):
    help = "Switch the shop's maintenance mode on or off, or show it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["on", "off", "status"])
        parser.add_argument(
            "--retry-after",
            type=int,
            default=mode.DEFAULT_RETRY_AFTER,
            metavar="SECONDS",
            help=f"Retry-After sent to customers (default {mode.DEFAULT_RETRY_AFTER}).",
        )
        parser.add_argument("--message", default=mode.DEFAULT_MESSAGE, help="Shown to customers.")

    def handle(self, *args, action: str, retry_after: int, message: str, **options) -> None:
        if action == "on":
            if retry_after < 0:
                raise CommandError("--retry-after must be 0 or more seconds")
            mode.switch_on(retry_after=retry_after, message=message)
        elif action == "off":
            mode.switch_off()
        self.stdout.write(_describe(mode.read_now()))


def _describe(state: mode.Mode) -> str:
    path = mode.flag_path()
    if not state.enabled:
        return f"maintenance mode: off ({path} absent)"
    return (
        f"maintenance mode: on since {state.since or '?'} ({path}); "
        f"Retry-After {state.retry_after} s; message: {state.message}"
    )
