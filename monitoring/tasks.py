"""Periodic monitoring tasks run by Celery beat (or beat_inprocess)."""

from celery import shared_task
from django.conf import settings


@shared_task(name="monitoring.escalation.escalate", ignore_result=True)
def escalate() -> list[str]:
    """One escalation round in the app: Alertmanager mode only (ESCALATION_IN_APP); in
    embedded mode the monitor's own loop escalates (monitoring/escalation/runner.py)."""
    if not settings.ESCALATION_IN_APP:
        return []
    from monitoring.escalation.runner import escalate_in_app

    return escalate_in_app()
