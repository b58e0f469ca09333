"""`manage.py database_maintain`: VACUUM ANALYZE (PostgreSQL) or PRAGMA optimize (SQLite)."""

from django.core.management.base import BaseCommand

from maintenance.backup import database_maintain


class Command(BaseCommand):
    help = "Run the weekly database maintenance now."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{database_maintain()}: done")
