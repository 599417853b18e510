"""What a project did, counted: one row per project, hour, client and event (`activity.record`)."""

from django.db import models

from projects.models import Project


class Count(models.Model):
    """How many times `kind`/`label` (at `endpoint`, for `client_id`) happened in one hour.

    Written by the rollup (`activity.rollup`, Redis's closed minutes) or, in the embedded default, by
    `activity.record` itself; both add to the row (an UPSERT increment), never overwrite it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="activity_counts", db_index=False)
    hour = models.DateTimeField()
    client_id = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=32)  # activity.record.KINDS
    label = models.CharField(max_length=128, blank=True)  # a grant type, an RFC error code, an outcome
    endpoint = models.CharField(max_length=64, blank=True)  # the route name of a refused request
    count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "activity_count"
        constraints = [models.UniqueConstraint(fields=["project", "hour", "client_id", "kind", "label", "endpoint"],
                                               name="activity_count_key")]


class RolledMinute(models.Model):
    """A minute of Redis counters already added to `Count`: the rollup claims it here (its primary
    key), in the transaction that adds its counts, so no minute is added twice."""

    minute = models.BigIntegerField(primary_key=True)  # seconds since the epoch // 60
    rolled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "activity_rolled_minute"
