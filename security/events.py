"""Security events: stored (SecurityEvent), counted (`security_events_total{type}`), logged."""

from __future__ import annotations

import logging

from django.db import DatabaseError

logger = logging.getLogger("security")

TYPES = (
    "ip_blocked",
    "ip_unblocked",
    "many_usernames_from_ip",  # credential stuffing: one address tries many usernames
    "username_from_many_ips",  # credential stuffing: one username tried from many addresses
    "rate_limited",
    "admin_login_after_hours",
    "privilege_granted",
    "scan_404",
    "scan_401",
    "new_staff_ip",
    "file_integrity_changed",
    "file_integrity_baselined",
)
# The types an alert names one by one (security_recent_event).
PAGED = ("admin_login_after_hours", "privilege_granted", "new_staff_ip")
SEVERITY = {"file_integrity_changed": "critical", "ip_unblocked": "info"}


def record(
    type_: str,
    *,
    ip: str | None = None,
    username: str = "",
    actor: str = "",
    detail: dict | None = None,
) -> None:
    """Store, count and log one event. The database being down loses the row, not the rest."""
    from security.metrics import EVENTS
    from security.models import SecurityEvent

    assert type_ in TYPES, type_
    severity = SEVERITY.get(type_, "warning")
    EVENTS.labels(type_).inc()
    logger.warning(
        "security event %s",
        type_,
        extra={
            "security_event": type_,
            "client_ip": ip,
            "username": username,
            "actor": actor,
            "detail": detail or {},
        },
    )
    try:
        SecurityEvent.objects.create(
            type=type_,
            severity=severity,
            ip=ip or None,
            username=username[:150],
            actor=actor[:150],
            detail=detail or {},
        )
    except DatabaseError:
        logger.exception("security event %s not stored", type_)
