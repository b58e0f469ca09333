"""Celery beat's scheduler with the maintenance pause (maintenance.pause): set as
CELERY_BEAT_SCHEDULER, it is beat's own PersistentScheduler except that an entry falling due
while paused is logged and skipped instead of sent."""

from __future__ import annotations

import logging

from celery.beat import PersistentScheduler

from maintenance import pause

logger = logging.getLogger("maintenance.beat")


class PausableScheduler(PersistentScheduler):
    def apply_entry(self, entry, producer=None):
        if pause.paused():
            logger.info(
                "beat paused for maintenance: %s skipped", entry.task, extra={"task": entry.task}
            )
            return
        super().apply_entry(entry, producer=producer)
