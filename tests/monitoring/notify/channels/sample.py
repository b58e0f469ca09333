"""Notifications the channel tests send."""

from __future__ import annotations

from dataclasses import replace

from monitoring.notify.notification import RESOLVED, Notification, NotifiedAlert

STARTS_MS = 1_796_421_600_000  # 2026-12-04T22:00:00Z


def payment_alert(instance: str = "web-1", **changes) -> NotifiedAlert:
    alert = NotifiedAlert(
        labels={
            "alertname": "HighPaymentFailureRate",
            "severity": "critical",
            "team": "product",
            "instance": instance,
            "job": "django",
        },
        annotations={
            "summary": "High payment failure rate",
            "description": "More than 10% of payments failed in the last 5 minutes",
            "runbook_url": "docs/runbooks/HighPaymentFailureRate.md",
        },
        starts_at_ms=STARTS_MS,
        generator_url="http://monitor.example:9091/graph?g0.expr=payment_failure_rate",
        value=23.456,
    )
    return replace(alert, **changes)


def notification(*alerts: NotifiedAlert, **changes) -> Notification:
    n = Notification(
        receiver="oncall",
        group_key='{}/{severity="critical"}:{alertname="HighPaymentFailureRate"}',
        alerts=alerts or (payment_alert(),),
        group_labels={"alertname": "HighPaymentFailureRate"},
        external_url="http://alertmanager.example:9093",
        dashboard_url="http://shop.example/monitoring/dashboard/",
        runbook_base_url="https://git.example/pasargad/blob/main/",
    )
    return replace(n, **changes)


def resolved(alert: NotifiedAlert) -> NotifiedAlert:
    return replace(alert, status=RESOLVED, ends_at_ms=alert.starts_at_ms + 600_000)
