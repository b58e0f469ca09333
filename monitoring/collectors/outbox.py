"""The outbox's backlog (shop/outbox): jobs per state and the age of the oldest unfinished one.

A backlog that grows or ages means tasks (confirmation emails, payment captures) are owed and
not running: the broker is down, no worker runs, or a job fails again and again (OutboxBacklog,
OutboxJobsDead). Read from the database, cached and time-limited like the business collector.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone

from monitoring.collectors.base import (
    CachedCollector,
    Families,
    Reading,
    cached_statistics,
    statement_deadline,
)
from shop.outbox.models import Job

# Done jobs are the past (and pruned); every other state is reported, at 0 when empty.
STATES = (Job.State.PENDING, Job.State.SENT, Job.State.RUNNING, Job.State.DEAD)
UNFINISHED = (Job.State.PENDING, Job.State.SENT, Job.State.RUNNING)


def outbox_statistics(*, alias: str, timeout: float, now: datetime | None = None) -> Reading:
    now = now or timezone.now()
    with statement_deadline(alias, timeout):
        rows = (
            Job.objects.using(alias)
            .filter(state__in=STATES)
            .values("state")
            .annotate(jobs=Count("pk"), oldest=Min("created_at"))
        )
        by_state = {row["state"]: row for row in rows}
    oldest = [by_state[s]["oldest"] for s in UNFINISHED if s in by_state]
    return {
        "jobs": {str(s): by_state[s]["jobs"] if s in by_state else 0 for s in STATES},
        "oldest_age_seconds": round((now - min(oldest)).total_seconds(), 3) if oldest else 0.0,
        "unavailable": [],
    }


class OutboxCollector(CachedCollector):
    name = "outbox"

    def __init__(
        self,
        *,
        alias: str = "default",
        interval: float = 15.0,
        budget: float = 1.0,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        super().__init__(
            cached_statistics(
                lambda **kw: outbox_statistics(now=clock(), **kw),
                alias=alias,
                interval=interval,
                budget=budget,
                name=self.name,
            )
        )

    def families(self, reading: Reading) -> Families:
        return families_from_reading(reading)


def families_from_reading(reading: Reading) -> Families:
    families = Families()
    for state, jobs in reading["jobs"].items():
        families.gauge(
            "outbox_jobs",
            "Background jobs in the outbox by state (pending: not yet handed to Celery; "
            "dead: given up after repeated failures).",
            jobs,
            state=state,
        )
    families.gauge(
        "outbox_oldest_job_age_seconds",
        "Age of the oldest outbox job not yet run (0 when the backlog is empty).",
        reading["oldest_age_seconds"],
    )
    return families
