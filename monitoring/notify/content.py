"""What every message says, decided once: the channels only lay it out.

Each alert is shown with its name, severity, team, summary, description, current value, since
when, its other labels and links (runbook, the rule's expression, the dashboard, a silence):
the specification's "Contextual: provide enough information to troubleshoot".

- ``alert_view(alert, notification, now_ms)`` -> ``AlertView``: one alert's facts as text;
- ``title(notification)``: ``[FIRING:2] HighCpuUsage (warning web-1)``, Alertmanager's subject
  shape; ``SEVERITY_COLOURS`` / ``colour(notification)`` for Slack's attachment bar and email;
- ``runbook_link(annotations, base_url)``: a relative ``runbook_url`` (the shipped rules'
  ``docs/runbooks/<Alert>.md``) joined to ``RUNBOOK_BASE_URL``;
- ``test_notification(receiver)``: the message ``manage.py monitor notify-test`` sends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from monitoring.acknowledge.links import ack_url
from monitoring.notify.notification import FIRING, Notification, NotifiedAlert

__all__ = [
    "SEVERITY_COLOURS",
    "AlertView",
    "alert_view",
    "colour",
    "format_since",
    "format_value",
    "runbook_link",
    "test_notification",
    "title",
    "web_url",
    "worst_severity",
]

SEVERITY_COLOURS = {"critical": "#d00000", "warning": "#f2a900", "info": "#439fe0"}
RESOLVED_COLOUR = "#2eb886"
UNKNOWN_COLOUR = "#808080"
# Labels every message shows on their own line, so the label list leaves them out.
_SHOWN = ("alertname", "severity", "team", "instance")


@dataclass(frozen=True)
class AlertView:
    """One alert as the messages show it (text only; each channel escapes for its format)."""

    name: str
    status: str
    severity: str
    team: str
    instance: str
    summary: str
    description: str
    value: str  # "" when the rule had no value to report
    since: str
    ended: str  # "" while firing
    labels: tuple[tuple[str, str], ...]  # the others, sorted
    runbook_url: str
    generator_url: str
    # Escalation (monitoring/escalation): which level this message is, what level 1 did, and
    # the signed one-click acknowledgement link of a firing alert ("" when not configured).
    escalation: str = ""
    automated_response: str = ""
    ack_url: str = ""

    @property
    def runbook_href(self) -> str:
        """The runbook as a link target: only an absolute web URL (else "": show it as text)."""
        return web_url(self.runbook_url)

    @property
    def query_href(self) -> str:
        return web_url(self.generator_url)


def alert_view(alert: NotifiedAlert, notification: Notification, now_ms: int) -> AlertView:
    labels, annotations = alert.labels, alert.annotations
    return AlertView(
        name=alert.name,
        status=alert.status,
        severity=labels.get("severity", ""),
        team=labels.get("team", ""),
        instance=labels.get("instance", ""),
        summary=annotations.get("summary", ""),
        description=annotations.get("description", ""),
        value=format_value(alert.value),
        since=format_since(alert.starts_at_ms, now_ms),
        ended="" if alert.ends_at_ms is None else format_since(alert.ends_at_ms, now_ms),
        labels=tuple(sorted((k, v) for k, v in labels.items() if k not in _SHOWN)),
        runbook_url=runbook_link(annotations, notification.runbook_base_url),
        generator_url=alert.generator_url,
        escalation=annotations.get("escalation", ""),
        automated_response=annotations.get("automated_response", ""),
        ack_url=ack_url(alert.fingerprint) if alert.status == FIRING else "",
    )


def title(notification: Notification) -> str:
    """``[FIRING:2] HighCpuUsage (warning web-1)``: status, firing count, the alert names, and
    the severity and instance when the whole group shares them."""
    status = notification.status.upper()
    if notification.status == FIRING:
        status += f":{len(notification.firing)}"
    names = sorted({a.name for a in notification.alerts}) or ["(no alerts)"]
    common = notification.common_labels
    shared = " ".join(common[k] for k in ("severity", "instance") if k in common)
    return f"[{status}] {' '.join(names)}" + (f" ({shared})" if shared else "")


def worst_severity(notification: Notification) -> str:
    """The most severe `severity` among the firing alerts (or among all, once resolved)."""
    severities = {a.labels.get("severity", "") for a in notification.firing or notification.alerts}
    for severity in SEVERITY_COLOURS:  # worst first
        if severity in severities:
            return severity
    return next(iter(sorted(severities - {""})), "")


def colour(notification: Notification) -> str:
    """The bar colour: green once resolved, else the worst severity's."""
    if notification.status != FIRING:
        return RESOLVED_COLOUR
    return SEVERITY_COLOURS.get(worst_severity(notification), UNKNOWN_COLOUR)


def format_value(value: float | None) -> str:
    """Four significant digits without exponent for ordinary magnitudes: ``92.35``, ``0.0512``."""
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def format_since(t_ms: int, now_ms: int) -> str:
    """``2026-12-04 21:58 UTC (12m ago)``."""
    when = datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{when} ({_ago(max(0, now_ms - t_ms) // 1000)})"


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s ago"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days}d {hours % 24}h ago"
    if hours:
        return f"{hours}h {minutes % 60}m ago"
    return f"{minutes}m ago"


def web_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL, else "": what may become a link or button
    (Slack refuses others; a `javascript:` annotation must never become an email link)."""
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else ""


def runbook_link(annotations: Mapping[str, str], base_url: str) -> str:
    """The alert's runbook: an absolute `runbook_url` as is, a relative one joined to
    `base_url` (or left relative, still naming the file, when no base is configured)."""
    url = annotations.get("runbook_url", "")
    if not url or urlsplit(url).scheme or not base_url:
        return url
    return urljoin(base_url.rstrip("/") + "/", url.lstrip("/"))


def test_notification(
    receiver: str,
    *,
    now_ms: int | None = None,
    external_url: str = "",
    dashboard_url: str = "",
    runbook_base_url: str = "",
) -> Notification:
    """A harmless firing alert that names itself a test, for `monitor notify-test`."""
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    alert = NotifiedAlert(
        labels={
            "alertname": "NotificationTest",
            "severity": "info",
            "team": "devops",
            "instance": "notify-test",
        },
        annotations={
            "summary": "Test notification from the Pasargad monitor",
            "description": "Sent by `manage.py monitor notify-test`; no action needed.",
            "runbook_url": "docs/notify-channels.md",
        },
        starts_at_ms=now_ms,
    )
    return Notification(
        receiver=receiver,
        group_key=f"notify-test/{receiver}/{now_ms}",
        alerts=(alert,),
        group_labels={"alertname": "NotificationTest"},
        external_url=external_url,
        dashboard_url=dashboard_url,
        runbook_base_url=runbook_base_url,
    )
