from django.core.management.base import BaseCommand

from shop.catalog.demo import demo_catalog_load


class Command(BaseCommand):
    help = (
        "Load the demo print-shop catalog (safe to run again). For a staff user run: "
        "DJANGO_SUPERUSER_PASSWORD=... manage.py createsuperuser --noinput "
        "--username admin --email admin@example.com"
    )

    def handle(self, *args, **options):
        created, updated = demo_catalog_load()
        self.stdout.write(f"Demo catalog: {created} products created, {updated} updated.")
