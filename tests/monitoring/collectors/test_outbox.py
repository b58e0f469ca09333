"""The outbox backlog collector: jobs per state (every state at 0 when empty) and the age of
the oldest job not yet run; one family per name in the app's exposition."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest

from monitoring.collectors.outbox import OutboxCollector, outbox_statistics
from monitoring.metrics import exposition
from shop.outbox.models import Job
from tests.monitoring.metric_values import sample_value

pytestmark = [pytest.mark.django_db, pytest.mark.db]

NOW = timezone.now()


def job(key: str, state: str, age_seconds: float) -> Job:
    created = Job.objects.create(key=key, task="t", state=state, due_at=NOW)
    Job.objects.filter(pk=created.pk).update(created_at=NOW - timedelta(seconds=age_seconds))
    return created


def test_an_empty_outbox_reports_every_state_at_zero():
    reading = outbox_statistics(alias="default", timeout=1.0, now=NOW)
    assert reading["jobs"] == {"pending": 0, "sent": 0, "running": 0, "dead": 0}
    assert reading["oldest_age_seconds"] == 0.0


# Committed rows: on PostgreSQL the collector reads in a thread of its own (another connection).
@pytest.mark.django_db(transaction=True)
def test_backlog_counts_states_and_ages_the_oldest_unfinished_job():
    job("a", "pending", 30)
    job("b", "pending", 10)
    job("c", "sent", 90)
    job("d", "done", 900)  # finished: neither counted nor aged
    job("e", "dead", 600)  # given up: counted, not aged (OutboxJobsDead watches it)
    reading = outbox_statistics(alias="default", timeout=1.0, now=NOW)
    assert reading["jobs"] == {"pending": 2, "sent": 1, "running": 0, "dead": 1}
    assert reading["oldest_age_seconds"] == pytest.approx(90, abs=0.01)

    registry = CollectorRegistry()
    registry.register(OutboxCollector(interval=0, budget=5.0, clock=lambda: NOW))
    text = generate_latest(registry).decode()
    assert 'outbox_jobs{state="pending"} 2.0' in text
    assert "outbox_oldest_job_age_seconds 90.0" in text
    assert text.count("# TYPE outbox_jobs ") == 1


def test_the_apps_exposition_exports_the_backlog():
    assert sample_value("outbox_jobs", state="dead") == 0
    assert "outbox_oldest_job_age_seconds 0.0" in exposition().decode()
