"""Plans and each workspace's billing state; the durable usage ledger the quota service admits against."""

from django.db import models

from core.models import TimeStampedModel


class Tier(models.TextChoices):
    FREE = "free", "Free"
    STARTER = "starter", "Starter"
    PROFESSIONAL = "professional", "Professional"
    ENTERPRISE = "enterprise", "Enterprise"


class Metric(models.TextChoices):
    API_CALLS = "api_calls", "API calls"
    AI_OPERATIONS = "ai_operations", "AI operations"
    STORAGE_BYTES = "storage_bytes", "Storage"


class Plan(TimeStampedModel):
    """A tier's price and limits. A null limit means unlimited."""

    tier = models.CharField(max_length=16, choices=Tier.choices, unique=True)
    name = models.CharField(max_length=40)
    description = models.CharField(max_length=200, blank=True)
    price_cents = models.PositiveIntegerField(null=True, blank=True, help_text="Per month; empty for custom pricing.")
    currency = models.CharField(max_length=3, default="usd")
    is_public = models.BooleanField(default=True, help_text="Shown on the pricing page.")
    sort_order = models.PositiveSmallIntegerField(default=0)

    api_calls_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    ai_operations_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    storage_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_active_api_keys = models.PositiveIntegerField(null=True, blank=True)
    max_concurrent_sessions = models.PositiveIntegerField(null=True, blank=True)
    requests_per_minute_per_key = models.PositiveIntegerField(null=True, blank=True)
    max_security_level = models.PositiveSmallIntegerField(default=2)
    custom_tools_allowed = models.BooleanField(default=False)
    max_upload_bytes = models.PositiveBigIntegerField(default=10 * 1024 * 1024)

    stripe_product_id = models.CharField(max_length=64, blank=True)
    stripe_price_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ("sort_order",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_security_level__gte=1, max_security_level__lte=4),
                name="plan_security_level_1_to_4",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def limit_for(self, metric: str) -> int | None:
        return {
            Metric.API_CALLS: self.api_calls_per_month,
            Metric.AI_OPERATIONS: self.ai_operations_per_month,
            Metric.STORAGE_BYTES: self.storage_bytes,
        }[Metric(metric)]


class SubscriptionStatus(models.TextChoices):
    NONE = "none", "No subscription"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"


class BillingAccount(TimeStampedModel):
    """A workspace's plan and subscription state (the Stripe customer is the workspace)."""

    workspace = models.OneToOneField("accounts.Workspace", on_delete=models.CASCADE, related_name="billing")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.NONE)
    # The quota period: the subscription's billing period, or the calendar month (UTC) without one.
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True, help_text="Past due: the plan is kept until then.")
    cancel_at_period_end = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True, db_index=True)
    # The newest Stripe event applied, so a replayed or late event never rolls the state back.
    last_event_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.workspace} on {self.plan}"


class UsageEntry(models.Model):
    """The durable ledger: admitted consumption, in batches. The sum per (workspace, metric, period) is the truth."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="usage_entries")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    period_start = models.DateTimeField()
    amount = models.BigIntegerField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "metric", "period_start"])]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.metric} +{self.amount}"


class UsageFlushCursor(models.Model):
    """How far the usage stream has been written to the ledger (one row per stream), advanced in the same
    transaction as the ledger rows so a crash between the two can neither lose nor repeat an entry."""

    stream = models.CharField(max_length=100, primary_key=True)
    last_id = models.CharField(max_length=40, default="0-0")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stream} @ {self.last_id}"


class QuotaCounter(models.Model):
    """Admitted usage per (workspace, metric, period): the durable running total the ledger entries add up to."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="quota_counters")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    period_start = models.DateTimeField()
    used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "metric", "period_start"], name="quota_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.metric} {self.period_start:%Y-%m-%d}: {self.used}"


class QuotaNotice(models.Model):
    """An email to the owners that a quota crossed a threshold (80 or 100 %); at most one per period."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="quota_notices")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "metric", "period_start", "threshold"], name="quota_notice_once_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.metric} {self.threshold}%"


class RequestCount(models.Model):
    """Requests of one API key in one clock minute: the MCP rate limit when there is no Redis (billing.admission).

    The table is UNLOGGED (migration 0004): a count lives two minutes at most, so it is not worth a WAL write per
    request, and a crash that empties it only forgives one minute's requests. Admission deletes a key's earlier minutes
    with its first request of a minute, so the table holds about one row per active key."""

    pk = models.CompositePrimaryKey("key_id", "minute")
    key_id = models.CharField(max_length=64)
    minute = models.BigIntegerField(help_text="Unix time // 60.")
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.key_id} @ {self.minute}: {self.count}"
