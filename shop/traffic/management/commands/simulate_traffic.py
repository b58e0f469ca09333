from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

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
        staff = parser.add_mutually_exclusive_group()
        staff.add_argument(
            "--staff-token", default="", help="API token of a staff user: moves paid orders on"
        )
        staff.add_argument(
            "--staff-user",
            default="",
            help="a staff user (created without a password if missing) in THIS command's "
            "database, whose token moves paid orders on; for a server sharing that database",
        )

    def handle(self, *args, **options):
        staff_token = options["staff_token"]
        if options["staff_user"]:
            staff_token = self._staff_token(options["staff_user"])
        try:
            simulator = TrafficSimulator(
                base_url=options["base_url"],
                rate=options["rate"],
                duration=options["duration"],
                max_requests=options["max_requests"],
                seed=options["seed"],
                staff_token=staff_token,
                concurrency=options["concurrency"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
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
