from django.core.management.base import BaseCommand, CommandError

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
            "--staff-token", default="", help="API token of a staff user: moves paid orders on"
        )

    def handle(self, *args, **options):
        try:
            simulator = TrafficSimulator(
                base_url=options["base_url"],
                rate=options["rate"],
                duration=options["duration"],
                max_requests=options["max_requests"],
                seed=options["seed"],
                staff_token=options["staff_token"],
                concurrency=options["concurrency"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        summary = simulator.run()
        for line in summary.lines():
            self.stdout.write(line)
