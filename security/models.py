"""What the security monitoring stores: events, failed logins, blocked addresses, known IPs."""

from django.conf import settings
from django.db import models


class SecurityEvent(models.Model):
    """One thing the security team may need to know (types: security/events.py TYPES)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    type = models.CharField(max_length=40)
    severity = models.CharField(max_length=10, default="warning")
    ip = models.GenericIPAddressField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True)
    actor = models.CharField(max_length=150, blank=True)  # who did it, for changes
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["type", "at"]), models.Index(fields=["ip", "at"])]


class FailedLogin(models.Model):
    at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    source = models.CharField(max_length=10)  # api | admin | other

    class Meta:
        indexes = [models.Index(fields=["ip", "at"]), models.Index(fields=["username", "at"])]


class BlockedIp(models.Model):
    ip = models.GenericIPAddressField(unique=True)
    blocked_at = models.DateTimeField(auto_now_add=True)
    until = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=200)


class KnownLoginIp(models.Model):
    """Addresses a staff account has signed in from (a new one is an event)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    ip = models.GenericIPAddressField()
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "ip"], name="known_login_ip")]
