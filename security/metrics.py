"""Security metrics, every label bounded:

- `failed_login_attempts_total{source}`: source api | admin | other;
- `rate_limited_requests_total`: requests answered 429;
- `security_events_total{type}`: type from events.TYPES only;
- `blocked_ips`: addresses blocked now (the database, at scrape time);
- `security_recent_event{type,username,ip}` = the event's Unix time, for events the rules page
  someone about (after-hours admin logins, privilege grants, new staff IPs) in the last
  RECENT_SECONDS, at most RECENT_MAX per type: the alert can say who, from where and when;
- `security_file_integrity_changed{path,change}` = 1 per critical file changed, added or
  missing since the baseline (paths: the baseline's, a bounded set), with
  `security_file_integrity_files` and `security_file_integrity_last_check_timestamp_seconds`.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from monitoring.metrics import Counter, register_collector, start_at_zero
from security.events import PAGED, TYPES

logger = logging.getLogger("security")

RECENT_SECONDS = 900
RECENT_MAX = 20
SOURCES = ("api", "admin", "other")

FAILED_LOGINS = Counter(
    "failed_login_attempts_total", "Failed login attempts, by where.", ["source"]
)
start_at_zero(FAILED_LOGINS, SOURCES)
RATE_LIMITED = Counter("rate_limited_requests_total", "Requests refused with 429 (rate limit).")
EVENTS = Counter("security_events_total", "Security events recorded, by type.", ["type"])
start_at_zero(EVENTS, TYPES)


class SecurityCollector:
    """Read at scrape time, so every worker's scrape says the same."""

    def collect(self):
        from security.models import BlockedIp, SecurityEvent

        now = timezone.now()
        try:
            blocked = BlockedIp.objects.filter(until__gt=now).count()
            recent = list(
                SecurityEvent.objects.filter(
                    type__in=PAGED, at__gte=now - timedelta(seconds=RECENT_SECONDS)
                ).values_list("type", "username", "ip", "at")[: RECENT_MAX * len(PAGED)]
            )
        except DatabaseError:
            return  # the database collector reports the outage; nothing to say here
        yield GaugeMetricFamily("blocked_ips", "Client addresses blocked now.", value=blocked)
        family = GaugeMetricFamily(
            "security_recent_event",
            "Recent security events that page, by type, user and address (value: Unix time).",
            labels=["type", "username", "ip"],
        )
        seen: dict[tuple, int] = {}
        for type_, username, ip, at in recent:
            key = (type_, username[:64], ip or "")
            if key not in seen and sum(1 for k in seen if k[0] == type_) < RECENT_MAX:
                seen[key] = 1
                family.add_metric(list(key), at.timestamp())
        yield family
        yield from _integrity_families()


def _integrity_families():
    changed = GaugeMetricFamily(
        "security_file_integrity_changed",
        "Critical files changed since the baseline (1 per file).",
        labels=["path", "change"],
    )
    path = settings.SECURITY_INTEGRITY_DIR / "file_check.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        state = None
    if state is not None:
        for item in state["changes"]:
            changed.add_metric([item["path"], item["change"]], 1)
        yield GaugeMetricFamily(
            "security_file_integrity_files",
            "Files in the integrity baseline.",
            value=state["files"],
        )
        yield GaugeMetricFamily(
            "security_file_integrity_last_check_timestamp_seconds",
            "When the critical files were last checked against the baseline.",
            value=state["checked_at"],
        )
    yield changed


register_collector(SecurityCollector())
