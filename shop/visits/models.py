from django.db import models


class Visit(models.Model):
    """One row per unique visitor per day: the denominator of the conversion rate."""

    day = models.DateField(db_index=True)
    visitor_key = models.CharField(max_length=64)
    user_id = models.BigIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "visitor_key"], name="unique_visitor_per_day")
        ]
