"""Logins, failed and successful, wherever they happen (the API login, the admin's session
login): Django's `user_login_failed` / `user_logged_in`, sent by `authenticate()` and `login()`.

A failure is stored (address, username tried, user agent, time; never the password) and logged.
More than SECURITY_LOGIN_FAILURES from one address in SECURITY_LOGIN_WINDOW_SECONDS blocks the
address for SECURITY_BLOCK_SECONDS. Accounts are never locked: an attacker could lock a real
user out by failing on purpose; blocking the attacker's own address costs the user nothing
(the address is the one security/client_ip.py resolves, which a client cannot forge).
Credential stuffing: many usernames from one address, or one username from many addresses, in
the window is an event (and an alert), without any lock.

A staff login outside business hours, and a staff login from an address the account never used,
are events too.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import DatabaseError
from django.dispatch import receiver
from django.utils import timezone

from security import config, events
from security.blocks import block

logger = logging.getLogger("security")


def _ip(request) -> str | None:
    if request is None:
        return None
    ip = getattr(request, "client_ip", None)
    if ip is None:  # no middleware (a test client without it, a management command)
        ip = config.current().client_ip.resolve(request.META)
    return ip or None


def _source(request) -> str:
    path = getattr(request, "path", "")
    if path.startswith("/admin/"):
        return "admin"
    return "api" if path.startswith("/api/") else "other"


@receiver(user_login_failed, dispatch_uid="security.login_failed")
def login_failed(sender, credentials=None, request=None, **kwargs) -> None:
    from security.metrics import FAILED_LOGINS
    from security.models import FailedLogin

    conf = config.current()
    ip = _ip(request)
    username = str((credentials or {}).get("username", ""))[:150]
    agent = request.META.get("HTTP_USER_AGENT", "")[:256] if request is not None else ""
    source = _source(request)
    FAILED_LOGINS.labels(source).inc()
    logger.warning(
        "login failed for %r from %s",
        username,
        ip,
        extra={"client_ip": ip, "username": username, "user_agent": agent, "source": source},
    )
    try:
        FailedLogin.objects.create(ip=ip, username=username, user_agent=agent, source=source)
        if ip is None:
            return
        since = timezone.now() - timedelta(seconds=conf.login_window)
        recent = FailedLogin.objects.filter(at__gte=since)
        from_ip = recent.filter(ip=ip)
        failures = from_ip.count()
        if failures > conf.login_failures:
            block(ip, conf.block_seconds, f"{failures} failed logins in {conf.login_window:.0f} s")
            if failures == conf.login_failures + 1:  # once per block, not per later attempt
                events.record(
                    "ip_blocked",
                    ip=ip,
                    username=username,
                    detail={"failures": failures, "seconds": conf.block_seconds},
                )
        _stuffing(recent, from_ip, ip, username, conf.stuffing_limit)
    except DatabaseError:
        logger.exception("failed login from %s not recorded", ip)


def _stuffing(recent, from_ip, ip: str, username: str, limit: int) -> None:
    names = from_ip.values("username").distinct().count()
    if names == limit + 1:  # the moment it crosses the line: one event, not one per attempt
        events.record("many_usernames_from_ip", ip=ip, detail={"usernames": names})
    if username:
        addresses = recent.filter(username=username).values("ip").distinct().count()
        if addresses == limit + 1:
            events.record(
                "username_from_many_ips", ip=ip, username=username, detail={"addresses": addresses}
            )


@receiver(user_logged_in, dispatch_uid="security.logged_in")
def logged_in(sender, request=None, user=None, **kwargs) -> None:
    if user is None or not (user.is_staff or user.is_superuser):
        return
    from security.business_hours import business_hours
    from security.models import KnownLoginIp

    ip = _ip(request)
    now = timezone.now()
    role = "superuser" if user.is_superuser else "staff"
    try:
        hours = business_hours()
        if not hours.contains(now):
            events.record(
                "admin_login_after_hours",
                ip=ip,
                username=user.get_username(),
                detail={"role": role, "local_time": hours.local(now).isoformat()},
            )
        if ip is None:
            return
        known = KnownLoginIp.objects.filter(user=user)
        had_any = known.exists()
        _, created = KnownLoginIp.objects.update_or_create(user=user, ip=ip)
        if created and had_any:
            events.record(
                "new_staff_ip", ip=ip, username=user.get_username(), detail={"role": role}
            )
    except DatabaseError:
        logger.exception("staff login of %s not checked", user.pk)
