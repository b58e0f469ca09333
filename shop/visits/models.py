from django.db import models


class Visit(models.Model):
    """One row per unique visitor per day, without Redis: the denominator of the conversion
    rate. Inserted in batches (shop/visits/counting.py); `visitor_key` is a keyed hash."""

    day = models.DateField(db_index=True)
    visitor_key = models.CharField(max_length=64)
    user_id = models.BigIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "visitor_key"], name="unique_visitor_per_day")
        ]
