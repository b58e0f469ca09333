from django.db import models


class Job(models.Model):
    """The intent to run one Celery task, written with the change that causes it."""

    class State(models.TextChoices):
        PENDING = "pending"  # waiting for the relay (new, or retrying after a failure)
        SENT = "sent"  # handed to the broker; redelivered if not run within the redelivery time
        RUNNING = "running"  # claimed by the process running it
        DONE = "done"
        DEAD = "dead"  # failed OUTBOX_MAX_ATTEMPTS times; needs a person

    # One job per intent ("order_confirmation_send:42"): the same intent twice is one job.
    key = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    # Message headers captured at enqueue (who caused it: request id, user id; see
    # services.CONTEXT_PROVIDERS), so the task's log lines name the request that placed it.
    headers = models.JSONField(default=dict)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="outbox_job_state_due")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
