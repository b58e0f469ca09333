"""The newest verified database backup (maintenance/backup.py), read from BACKUP_DIR at scrape
time: the same answer in every gunicorn worker, nothing shared between processes.

`backup_last_success_timestamp_seconds` is 0 while there is no backup at all, so BackupTooOld
fires for a database never backed up, not only for one whose backups stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from maintenance.backup import latest


class BackupCollector:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only

    def collect(self) -> Iterator[Metric]:
        try:
            backup = latest(self.directory)
        except OSError:
            backup = None  # a file removed while listing: the next scrape reads again
        yield GaugeMetricFamily(
            "backup_last_success_timestamp_seconds",
            "Unix time of the newest verified database backup (0: none).",
            value=backup.taken_at if backup else 0,
        )
        if backup:
            yield GaugeMetricFamily(
                "backup_last_size_bytes",
                "Size of the newest verified database backup.",
                value=backup.size,
            )
