"""Alert state as the monitor last evaluated it, and the append-only history of its transitions.

`AlertInstance` is one row per alert (rule + label set, keyed by `fingerprint`): the current
state, kept after resolution so the row can be reused when the alert comes back.
`AlertTransition` records every state change, never updated or deleted by the monitor. Its `id`
increases in commit order (the monitor has exactly one writer, which serialises its cycles), so
a consumer — the notification pipeline — can remember the last id it handled and read
`AlertTransition.objects.filter(id__gt=last)` without missing or repeating a transition.
"""

from __future__ import annotations

from django.db import models


class AlertState(models.TextChoices):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class AlertInstance(models.Model):
    fingerprint = models.CharField(max_length=64, unique=True)
    alertname = models.CharField(max_length=200, db_index=True)
    rule_group = models.CharField(max_length=200)
    rule_file = models.CharField(max_length=500, blank=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=AlertState.choices, db_index=True)
    active_at = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField()
    # Prometheus' keep_firing_for: when the condition stopped holding while the alert kept firing.
    keep_firing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["alertname", "fingerprint"]

    def __str__(self) -> str:
        return f"{self.alertname} {self.labels} [{self.state}]"


class AlertTransition(models.Model):
    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(AlertInstance, on_delete=models.PROTECT, related_name="transitions")
    fingerprint = models.CharField(max_length=64, db_index=True)
    alertname = models.CharField(max_length=200)
    from_state = models.CharField(max_length=10, choices=AlertState.choices)
    to_state = models.CharField(max_length=10, choices=AlertState.choices)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    value = models.FloatField(null=True, blank=True)
    at = models.DateTimeField(help_text="evaluation time at which the state changed")
    active_at = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.alertname} {self.from_state}→{self.to_state}"

    @property
    def is_resolution(self) -> bool:
        """A firing alert stopped firing: the notifier sends the 'resolved' message."""
        return self.from_state == AlertState.FIRING and self.to_state == AlertState.INACTIVE
