"""The weekly backup and database maintenance, run by Celery beat (or beat_inprocess)."""

from pathlib import Path

from celery import shared_task
from django.conf import settings

from maintenance.backup import backup_create, backups_prune, database_maintain


@shared_task(name="maintenance.backup", ignore_result=True)
def backup() -> str:
    """A failure raises (logged by the worker); BackupTooOld says when backups stop."""
    directory = Path(settings.BACKUP_DIR)
    made = backup_create(directory)
    backups_prune(directory, keep=settings.BACKUP_KEEP)
    return str(made.path)


@shared_task(name="maintenance.database_maintain", ignore_result=True)
def maintain() -> str:
    return database_maintain()
