from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from rest_framework.authtoken.models import Token

from shop.traffic.profiles import PROFILES, ProfileError, mix_for
from shop.traffic.simulator import TrafficSimulator


class Command(BaseCommand):
    help = "Drive realistic, bounded traffic over HTTP against a running shop."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
        parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
        parser.add_argument("--duration", type=float, default=60.0, help="seconds to run")
        parser.add_argument("--max-requests", type=int, default=10_000)
        parser.add_argument("--seed", type=int, default=None, help="repeatable choices")
        parser.add_argument(
            "--concurrency", type=int, default=4, help="parallel sessions (1: repeatable)"
        )
        parser.add_argument(
            "--profile",
            action="append",
            default=[],
            metavar="NAME",
            help="healthy (default) or a fault; repeat to combine: "
            + ", ".join(PROFILES)
            + " (see --list-profiles)",
        )
        parser.add_argument(
            "--list-profiles", action="store_true", help="describe the profiles and exit"
        )
        staff = parser.add_mutually_exclusive_group()
        staff.add_argument(
            "--staff-token",
            default="",
            help="API token of a staff user: moves paid orders on and restocks",
        )
        staff.add_argument(
            "--staff-user",
            default="",
            help="a staff user (created without a password if missing) in THIS command's "
            "database, whose token moves paid orders on; for a server sharing that database",
        )

    def handle(self, *args, **options):
        if options["list_profiles"]:
            for profile in PROFILES.values():
                targets = ", ".join(profile.targets) or "no alert"
                self.stdout.write(f"{profile.name:<18} {profile.summary}\n{'':<18} → {targets}")
            return
        names = [n for value in options["profile"] for n in value.split(",") if n] or ["healthy"]
        try:
            mix = mix_for(names)
        except ProfileError as error:
            raise CommandError(str(error)) from None
        staff_token = options["staff_token"]
        if options["staff_user"]:
            staff_token = self._staff_token(options["staff_user"])
        if mix.restock and not staff_token:
            self.stderr.write(
                "no staff user (--staff-user or --staff-token): nobody restocks, so products "
                "will run low and LowStock will fire"
            )
        try:
            simulator = TrafficSimulator(
                base_url=options["base_url"],
                rate=options["rate"],
                duration=options["duration"],
                max_requests=options["max_requests"],
                seed=options["seed"],
                staff_token=staff_token,
                concurrency=options["concurrency"],
                mix=mix,
                database=(connections["default"].vendor, _connect),
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"profile {'+'.join(dict.fromkeys(names))}")
        summary = simulator.run()
        for line in summary.lines():
            self.stdout.write(line)

    def _staff_token(self, username: str) -> str:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "email": ""}
        )
        if created:
            user.set_unusable_password()  # token only: nobody can log in as it
            user.save(update_fields=["password"])
        elif not user.is_staff:
            raise CommandError(f"user {username!r} exists and is not staff")
        return Token.objects.get_or_create(user=user)[0].key


def _connect():
    """A DB-API connection of its own to the shop's database (the database profiles' job)."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    return wrapper.connection
