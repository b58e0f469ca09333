"""`manage.py backup [--dir DIR] [--keep N]`: take, verify and keep a database backup."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from maintenance.backup import BackupError, backup_create, backups_prune


class Command(BaseCommand):
    help = "Back up the database, verify it by restoring into a scratch database, prune old ones."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", type=Path, default=None, help="default: BACKUP_DIR")
        parser.add_argument("--keep", type=int, default=None, help="default: BACKUP_KEEP")

    def handle(self, *args, **options) -> None:
        directory = options["dir"] or Path(settings.BACKUP_DIR)
        keep = options["keep"] if options["keep"] is not None else settings.BACKUP_KEEP
        if keep < 1:
            raise CommandError("--keep must be at least 1")
        try:
            backup = backup_create(directory)
        except (BackupError, OSError) as e:
            raise CommandError(f"backup failed, no backup kept: {e}") from e
        removed = backups_prune(directory, keep=keep)
        rows = sum(backup.tables.values())
        self.stdout.write(
            f"backup {backup.path} verified: {len(backup.tables)} tables, {rows} rows, "
            f"{backup.size} bytes; {len(removed)} old backups removed"
        )
