"""The audit log (who did what, in which workspace, from where) and the usage ledger (every tool call, with its
hourly and daily rollups)."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models


class AuditEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the user is deleted, so the trail still says who it was.
    actor_email = models.EmailField(blank=True)
    workspace = models.ForeignKey(
        "accounts.Workspace", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_email or 'system'}"


# --- Usage events and their rollups --------------------------------------------------------------------------------
# Latency histogram bounds (ms) of the rollups: bucket i counts calls with latency < LATENCY_BOUNDS_MS[i] (and not in
# an earlier bucket); the last bucket counts the rest. p50/p95 are read from it (monitoring.usage.percentile).
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000)


class UsageEvent(models.Model):
    """One tool call as its caller saw it: written in batches off the hot path (monitoring.usage), kept for
    USAGE_EVENT_RETENTION_DAYS, rolled up hourly and daily. Billing's durable ledger (billing.UsageEntry) stays the
    source of truth for quotas; this ledger is for people (dashboards, exports)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(help_text="When the call was answered (UTC).")
    # No database constraints on these two: events are written in bulk by another connection, and a deleted workspace's
    # events are removed with it (monitoring.receivers), never checked row by row on insert.
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    metric = models.CharField(max_length=32, default="api_calls")
    units = models.PositiveIntegerField(default=1)
    ai_operations = models.PositiveIntegerField(default=0)
    tool = models.CharField(max_length=128)
    status = models.CharField(max_length=16)
    latency_ms = models.FloatField()
    error_code = models.IntegerField(null=True, blank=True)
    transport = models.CharField(max_length=20)

    class Meta:
        ordering = ("-at",)
        indexes = [
            models.Index(fields=["workspace", "-at", "-id"], name="usage_event_workspace_at"),
            models.Index(fields=["workspace", "tool", "-at"], name="usage_event_workspace_tool"),
            BrinIndex(fields=["at"], name="usage_event_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.tool} {self.status}"


class Granularity(models.TextChoices):
    HOUR = "hour", "Hour, by tool"
    DAY = "day", "UTC day, by tool and status"
    KEY_DAY = "key_day", "UTC day, by API key and status"


class UsageRollup(models.Model):
    """Calls per workspace: per UTC hour by tool (the charts), per UTC day by tool and status (top tools, staff) and
    by API key and status (the keys' breakdown): counts, failures, AI operations and a latency histogram. Kept after
    the raw events are pruned.

    Charts group the hourly rows by the viewer's local day; tables over whole days read the daily rows, which are
    a few dozen per workspace and day whatever its traffic."""

    id = models.BigAutoField(primary_key=True)
    granularity = models.CharField(max_length=8, choices=Granularity.choices)
    bucket = models.DateTimeField(help_text="Start of the hour or day, UTC.")
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    tool = models.CharField(max_length=128, blank=True, help_text="Empty on the rows by API key.")
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="On the rows by API key (empty there: calls made signed in, without a key).",
    )
    status = models.CharField(max_length=16, blank=True, help_text="On the daily rows; empty on the hourly ones.")
    calls = models.PositiveIntegerField()
    failed = models.PositiveIntegerField(default=0, help_text="Calls whose status is not ok.")
    ai_operations = models.PositiveBigIntegerField(default=0)
    latency_ms_sum = models.FloatField()
    latency_histogram = ArrayField(models.PositiveIntegerField(), size=len(LATENCY_BOUNDS_MS) + 1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["granularity", "workspace", "bucket", "tool", "api_key", "status"],
                name="usage_rollup_unique",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["granularity", "bucket"], name="usage_rollup_bucket")]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:%M} {self.tool or self.api_key_id}: {self.calls}"


class UsageDirtyHour(models.Model):
    """An hour of a workspace whose rollups must be recomputed: written in the same transaction as the events, so an
    event committed late (another process, a slow flush) is never missed by the rollup."""

    workspace_id = models.UUIDField()
    hour = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace_id", "hour"], name="usage_dirty_hour_unique")]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.hour:%Y-%m-%d %H:00}"
