"""The quota service: check and consume a workspace's monthly usage, exactly, on every call.

Design (see docs/architecture.md, "Quotas"):

- The durable truth is PostgreSQL: `QuotaCounter` (running total per workspace, metric and period) and the
  `UsageEntry` ledger whose entries add up to it.
- With Redis (`REDIS_URL`), admission happens in Redis: one Lua script checks the limit, increments the counter and
  appends the admitted amount to a stream, atomically, in one round trip. `usage_flush` (Celery beat, every few
  seconds) moves the stream into the ledger and counters; the stream position is stored in the same transaction, so
  a crash can neither lose nor repeat an entry. A missing Redis counter is seeded from `QuotaCounter`.
- Without Redis, admission is one conditional `UPDATE ... RETURNING` on `QuotaCounter` plus a ledger row, in one
  transaction: exact and durable, slower, for single-machine installs.

Admission is exact in both: a consumer is admitted only if the amount fits under the limit at that instant, so the
total admitted never exceeds the limit. A plan's limits and period are cached in each process for
`POLICY_CACHE_SECONDS`, so a plan change reaches every process within that time.
"""

from __future__ import annotations

import calendar
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import (
    BillingAccount,
    Metric,
    Plan,
    QuotaCounter,
    SubscriptionStatus,
    Tier,
    UsageEntry,
    UsageFlushCursor,
)
from core.epoch import access_epoch_bump
from core.errors import LimitReached
from core.observe import quota_denial_observe

POLICY_CACHE_SECONDS = 10
COUNTED_METRICS = (Metric.API_CALLS, Metric.AI_OPERATIONS)
NOTICE_THRESHOLDS = (80, 100)  # percent of a quota at which the owners are emailed, once per period


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB" if size >= 104_858 else f"{size / 1024:.1f} KB"


class QuotaExceeded(LimitReached):
    code = "quota_exceeded"

    def __init__(self, *, metric: str, limit: int, used: int, resets_at: datetime, upgrade_url: str) -> None:
        label = Metric(metric).label
        if metric == Metric.STORAGE_BYTES:  # measured, not counted per period: it frees up when files are deleted
            message = (
                f"This workspace stores {_megabytes(used)} of its {_megabytes(limit)} of storage, and this would go "
                f"over it. Delete documents it no longer needs, or upgrade the plan for more: {upgrade_url}"
            )
        else:
            message = (
                f"This workspace has used {used:,} of its {limit:,} {label} for this period. The quota resets on "
                f"{resets_at:%Y-%m-%d %H:%M} UTC; upgrade the plan for more: {upgrade_url}"
            )
        super().__init__(
            message,
            details={
                "metric": metric,
                "limit": limit,
                "used": used,
                "resets_at": resets_at.isoformat(),
                "upgrade_url": upgrade_url,
            },
        )
        self.metric, self.limit, self.used, self.resets_at = metric, limit, used, resets_at
        self.retry_after = max(int((resets_at - timezone.now()).total_seconds()), 1)


@dataclass(frozen=True)
class QuotaPolicy:
    """What a workspace may use this period; cached per process."""

    workspace_id: UUID
    tier: str
    limits: dict[str, int | None]
    period_start: datetime
    period_end: datetime
    fetched_at: float
    # Limits of the MCP endpoint (None: unlimited): requests per minute per key, open sessions per key.
    requests_per_minute_per_key: int | None = None
    max_concurrent_sessions: int | None = None
    # What the plan lets a workspace see in the tool registry.
    max_security_level: int = 1
    custom_tools_allowed: bool = False

    def limit(self, metric: str) -> int | None:
        return self.limits[metric]


@dataclass(frozen=True)
class QuotaStatus:
    metric: str
    limit: int | None  # None: unlimited
    used: int
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0 if self.limit is None else 100
        return min(100, round(self.used * 100 / self.limit))


# --- periods and policy -----------------------------------------------------------------------------------------


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _add_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_for(account: BillingAccount, now: datetime) -> tuple[datetime, datetime]:
    """The subscription's period while it is live; the calendar month (UTC) otherwise."""
    live = account.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)
    if live and account.period_start and account.period_end:
        start, end = account.period_start, account.period_end
        while now >= end:  # the renewal webhook is late: carry on with the next period
            start, end = end, _add_month(end)
        return start, end
    start = _month_start(now)
    return start, _add_month(start)


def billing_account_get(*, workspace_id: UUID) -> BillingAccount:
    """The workspace's billing state; a workspace without one starts on the Free plan."""
    account = BillingAccount.objects.select_related("plan").filter(workspace_id=workspace_id).first()
    if account is None:
        account, _created = BillingAccount.objects.select_related("plan").get_or_create(
            workspace_id=workspace_id, defaults={"plan": Plan.objects.get(tier=Tier.FREE)}
        )
    return account


def effective_plan(account: BillingAccount, now: datetime) -> Plan:
    """The plan that counts now: a past-due subscription past its grace period counts as Free."""
    if account.status == SubscriptionStatus.PAST_DUE and account.grace_until and account.grace_until <= now:
        return Plan.objects.get(tier=Tier.FREE)
    return account.plan


_policies: dict[UUID, QuotaPolicy] = {}
_policies_lock = threading.Lock()


def quota_policy(*, workspace_id: UUID) -> QuotaPolicy:
    now_monotonic = time.monotonic()
    policy = _policies.get(workspace_id)
    now = timezone.now()
    if policy and now_monotonic - policy.fetched_at < POLICY_CACHE_SECONDS and now < policy.period_end:
        return policy
    account = billing_account_get(workspace_id=workspace_id)
    start, end = period_for(account, now)
    plan = effective_plan(account, now)
    policy = QuotaPolicy(
        workspace_id=workspace_id,
        tier=plan.tier,
        limits={metric: plan.limit_for(metric) for metric in Metric.values},
        period_start=start,
        period_end=end,
        fetched_at=now_monotonic,
        requests_per_minute_per_key=plan.requests_per_minute_per_key,
        max_concurrent_sessions=plan.max_concurrent_sessions,
        max_security_level=plan.max_security_level,
        custom_tools_allowed=plan.custom_tools_allowed,
    )
    with _policies_lock:
        _policies[workspace_id] = policy
    return policy


def quota_policy_forget(*, workspace_id: UUID) -> None:
    """Drop this process's cached policy (after a plan change); other processes refresh within the cache time, and
    those that keep plans with their caches (the MCP fast path) at once, through the access epoch."""
    with _policies_lock:
        _policies.pop(workspace_id, None)
    access_epoch_bump()


def upgrade_url(workspace_id: UUID) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("console:billing", args=[workspace_id])


# --- counters ---------------------------------------------------------------------------------------------------


class Counters(Protocol):
    def consume(self, policy: QuotaPolicy, metric: str, amount: int) -> tuple[bool, int]: ...
    def used(self, policy: QuotaPolicy, metric: str) -> int: ...


_CONSUME_SCRIPT = """
local used = redis.call('GET', KEYS[1])
if not used then return {-1, 0} end
used = tonumber(used)
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 and used + amount > limit then return {0, used} end
used = redis.call('INCRBY', KEYS[1], amount)
redis.call('XADD', KEYS[2], '*', 'w', ARGV[3], 'm', ARGV[4], 'p', ARGV[5], 'a', amount)
return {1, used}
"""


class RedisCounters:
    """Admission in Redis (one atomic script), durability through the stream that `usage_flush` drains."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.stream = f"{prefix}:stream"
        self.script = self.client.register_script(_CONSUME_SCRIPT)

    def key(self, policy: QuotaPolicy, metric: str) -> str:
        return f"{self.prefix}:{policy.workspace_id}:{metric}:{int(policy.period_start.timestamp())}"

    def consume(self, policy: QuotaPolicy, metric: str, amount: int) -> tuple[bool, int]:
        key = self.key(policy, metric)
        limit = policy.limit(metric)
        arguments: list[str | int] = [
            amount,
            -1 if limit is None else limit,
            str(policy.workspace_id),
            metric,
            policy.period_start.isoformat(),
        ]
        for _attempt in range(2):
            admitted, used = self.script(keys=[key, self.stream], args=arguments)
            if admitted >= 0:
                return bool(admitted), int(used)
            self._seed(policy, metric, key)
        raise RuntimeError(f"quota counter {key} could not be initialised")

    def used(self, policy: QuotaPolicy, metric: str) -> int:
        key = self.key(policy, metric)
        value = self.client.get(key)
        if value is None:
            self._seed(policy, metric, key)
            value = self.client.get(key)
        return int(value or 0)

    def _seed(self, policy: QuotaPolicy, metric: str, key: str) -> None:
        """Start a missing counter from the durable total (first use this period, or Redis lost its data)."""
        durable = (
            QuotaCounter.objects.filter(
                workspace_id=policy.workspace_id, metric=metric, period_start=policy.period_start
            )
            .values_list("used", flat=True)
            .first()
        ) or 0
        expires = int((policy.period_end - timezone.now()).total_seconds()) + 2 * 24 * 3600
        self.client.set(key, durable, nx=True, ex=max(expires, 60))


class DatabaseCounters:
    """Admission by one conditional UPDATE in PostgreSQL, with its ledger row in the same transaction."""

    def consume(self, policy: QuotaPolicy, metric: str, amount: int) -> tuple[bool, int]:
        limit = policy.limit(metric)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_quotacounter (workspace_id, metric, period_start, used) VALUES (%s, %s, %s, 0) "
                "ON CONFLICT (workspace_id, metric, period_start) DO NOTHING",
                [policy.workspace_id, metric, policy.period_start],
            )
            cursor.execute(
                "UPDATE billing_quotacounter SET used = used + %s "
                "WHERE workspace_id = %s AND metric = %s AND period_start = %s "
                "AND (%s::bigint IS NULL OR used + %s <= %s) RETURNING used",
                [amount, policy.workspace_id, metric, policy.period_start, limit, amount, limit],
            )
            row = cursor.fetchone()
            if row is None:
                return False, self.used(policy, metric)
            UsageEntry.objects.create(
                workspace_id=policy.workspace_id, metric=metric, period_start=policy.period_start, amount=amount
            )
            return True, int(row[0])

    def used(self, policy: QuotaPolicy, metric: str) -> int:
        return (
            QuotaCounter.objects.filter(
                workspace_id=policy.workspace_id, metric=metric, period_start=policy.period_start
            )
            .values_list("used", flat=True)
            .first()
        ) or 0


@cache
def _redis_counters(url: str, prefix: str) -> RedisCounters:
    return RedisCounters(url, prefix)


def counters() -> Counters:
    if settings.REDIS_URL:
        return _redis_counters(settings.REDIS_URL, settings.QUOTA_REDIS_PREFIX)
    return DatabaseCounters()


# --- storage is measured, not counted -----------------------------------------------------------------------------

_storage_measure: Any = None


def storage_measure_register(measure: Any) -> None:
    """The app that stores files (rag) registers `measure(workspace_id) -> bytes stored`."""
    global _storage_measure
    _storage_measure = measure


def _stored_bytes(workspace_id: UUID) -> int:
    return int(_storage_measure(workspace_id)) if _storage_measure else 0


# --- the public surface -------------------------------------------------------------------------------------------


def _status(policy: QuotaPolicy, metric: str, used: int) -> QuotaStatus:
    return QuotaStatus(metric=metric, limit=policy.limit(metric), used=used, resets_at=policy.period_end)


def quota_exceeded(policy: QuotaPolicy, metric: str, used: int) -> QuotaExceeded:
    limit = policy.limit(metric)
    assert limit is not None
    quota_denial_observe(metric=metric)  # every refusal, whichever path asked (monitoring counts them)
    return QuotaExceeded(
        metric=metric, limit=limit, used=used, resets_at=policy.period_end, upgrade_url=upgrade_url(policy.workspace_id)
    )


def _validated(metric: str, amount: int) -> None:
    if metric not in Metric.values:
        raise ValueError(f"unknown metric {metric!r}")
    if amount <= 0:
        raise ValueError("amount must be positive")


def quota_check(*, workspace_id: UUID, metric: str, amount: int = 1) -> QuotaStatus:
    """Would `amount` more fit? Raises QuotaExceeded if not; consumes nothing. For storage, `amount` is the size
    of what is about to be stored."""
    _validated(metric, amount)
    policy = quota_policy(workspace_id=workspace_id)
    used = _stored_bytes(workspace_id) if metric == Metric.STORAGE_BYTES else counters().used(policy, metric)
    limit = policy.limit(metric)
    if limit is not None and used + amount > limit:
        raise quota_exceeded(policy, metric, used)
    return _status(policy, metric, used)


def usage_consume(*, workspace_id: UUID, metric: str, amount: int = 1) -> QuotaStatus:
    """Admit and record `amount` of a counted metric atomically, or raise QuotaExceeded and record nothing."""
    _validated(metric, amount)
    if metric not in COUNTED_METRICS:
        raise ValueError(f"{metric} is measured, not consumed: use quota_check before storing")
    policy = quota_policy(workspace_id=workspace_id)
    admitted, used = counters().consume(policy, metric, amount)
    if not admitted:
        raise quota_exceeded(policy, metric, used)
    quota_notice_if_crossed(policy, metric, before=used - amount, after=used)
    return _status(policy, metric, used)


def quota_notice_due(policy: QuotaPolicy, metric: str, *, before: int, after: int) -> list[int]:
    """The notice thresholds (percent) this consumption crossed; cheap, so async callers check it before going to
    a thread to send the notices."""
    limit = policy.limit(metric)
    if not limit:
        return []
    return [threshold for threshold in NOTICE_THRESHOLDS if before * 100 < threshold * limit <= after * 100]


def quota_notice_if_crossed(policy: QuotaPolicy, metric: str, *, before: int, after: int) -> None:
    """Admission is exact, so exactly one consumption crosses each threshold; it queues the owners' email."""
    for threshold in quota_notice_due(policy, metric, before=before, after=after):
        from billing.tasks import quota_notice_task

        quota_notice_task.delay_on_commit(str(policy.workspace_id), metric, policy.period_start.isoformat(), threshold)


def quota_usage(*, workspace_id: UUID) -> list[QuotaStatus]:
    """Every metric's limit and use this period, for the billing page and the API."""
    policy = quota_policy(workspace_id=workspace_id)
    backend = counters()
    statuses = [_status(policy, metric, backend.used(policy, metric)) for metric in COUNTED_METRICS]
    statuses.append(_status(policy, Metric.STORAGE_BYTES, _stored_bytes(workspace_id)))
    return statuses


def usage_flush(*, batch: int = 5000) -> int:
    """Move admitted usage from the Redis stream into the ledger and durable counters; returns entries moved.

    The cursor row is locked and advanced in the same transaction as the ledger rows, so concurrent or repeated
    flushes never write an entry twice, and a crash before the commit leaves the entries to the next flush.
    """
    backend = counters()
    if not isinstance(backend, RedisCounters):
        return 0
    moved = 0
    while True:
        with transaction.atomic():
            cursor, _created = UsageFlushCursor.objects.select_for_update().get_or_create(stream=backend.stream)
            entries: Any = backend.client.xrange(backend.stream, min=f"({cursor.last_id}", count=batch)
            if not entries:
                break
            totals: dict[tuple[str, str, str], int] = {}
            for _entry_id, fields in entries:
                group = (_text(fields[b"w"]), _text(fields[b"m"]), _text(fields[b"p"]))
                totals[group] = totals.get(group, 0) + int(fields[b"a"])
            _ledger_write(totals)
            cursor.last_id = _text(entries[-1][0])
            cursor.save(update_fields=["last_id", "updated_at"])
        # Entries up to the cursor are in the ledger now; drop them from Redis (XTRIM keeps the cursor's own).
        backend.client.xtrim(backend.stream, minid=cursor.last_id)
        moved += len(entries)
        if len(entries) < batch:
            break
    return moved


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ledger_write(totals: dict[tuple[str, str, str], int]) -> None:
    from accounts.models import Workspace

    live = {str(pk) for pk in Workspace.objects.filter(pk__in={w for w, _m, _p in totals}).values_list("pk", flat=True)}
    rows = [
        (workspace_id, metric, datetime.fromisoformat(period), amount)
        for (workspace_id, metric, period), amount in totals.items()
        if workspace_id in live  # usage of a workspace deleted since has nowhere to go
    ]
    UsageEntry.objects.bulk_create(
        UsageEntry(workspace_id=w, metric=m, period_start=p, amount=a) for w, m, p, a in rows
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO billing_quotacounter (workspace_id, metric, period_start, used) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (workspace_id, metric, period_start) "
            "DO UPDATE SET used = billing_quotacounter.used + EXCLUDED.used",
            rows,
        )


def usage_ledger_total(*, workspace_id: UUID, metric: str, period_start: datetime) -> int:
    """The ledger's sum for one period (reconciliation: it must equal what was admitted)."""
    from django.db.models import Sum

    total = UsageEntry.objects.filter(workspace_id=workspace_id, metric=metric, period_start=period_start).aggregate(
        total=Sum("amount")
    )["total"]
    return int(total or 0)
