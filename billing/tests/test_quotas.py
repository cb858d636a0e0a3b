"""The quota service, on both counters: Redis (with its ledger flush) and PostgreSQL alone."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing import quotas
from billing.models import BillingAccount, Metric, Plan, QuotaCounter, SubscriptionStatus, Tier
from billing.quotas import QuotaExceeded, period_for, quota_check, usage_consume, usage_flush
from billing.tests.factories import workspace_on_plan

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["redis", "database"])
def backend(request, settings):
    if request.param == "database":
        settings.REDIS_URL = ""
    return request.param


def _admitted_until_refused(workspace_id, metric=Metric.API_CALLS, amount=1, attempts=1000) -> int:
    admitted = 0
    for _ in range(attempts):
        try:
            usage_consume(workspace_id=workspace_id, metric=metric, amount=amount)
        except QuotaExceeded:
            break
        admitted += amount
    return admitted


def test_consumption_stops_exactly_at_the_limit(backend):
    workspace = workspace_on_plan(api_calls=25)

    assert _admitted_until_refused(workspace.pk) == 25
    with pytest.raises(QuotaExceeded) as refused:
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    error = refused.value
    assert error.details["metric"] == "api_calls"
    assert error.details["limit"] == 25
    assert error.details["used"] == 25
    assert str(error.details["upgrade_url"]).endswith(f"/console/w/{workspace.pk}/billing/")
    assert error.resets_at > timezone.now()
    assert "resets on" in error.message


def test_an_amount_that_does_not_fit_is_refused_whole(backend):
    workspace = workspace_on_plan(ai_operations=10)
    usage_consume(workspace_id=workspace.pk, metric=Metric.AI_OPERATIONS, amount=7)
    with pytest.raises(QuotaExceeded):
        usage_consume(workspace_id=workspace.pk, metric=Metric.AI_OPERATIONS, amount=4)
    assert usage_consume(workspace_id=workspace.pk, metric=Metric.AI_OPERATIONS, amount=3).used == 10


def test_check_consumes_nothing(backend):
    workspace = workspace_on_plan(api_calls=1)
    for _ in range(3):
        assert quota_check(workspace_id=workspace.pk, metric=Metric.API_CALLS).used == 0
    usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    with pytest.raises(QuotaExceeded):
        quota_check(workspace_id=workspace.pk, metric=Metric.API_CALLS)


def test_unlimited_plans_never_refuse(backend):
    workspace = workspace_on_plan(api_calls=None)
    assert _admitted_until_refused(workspace.pk, amount=1000, attempts=50) == 50_000


def test_a_downgrade_keeps_usage_and_refuses_new_consumption(backend):
    workspace = workspace_on_plan(api_calls=100)
    for _ in range(30):
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    BillingAccount.objects.filter(workspace=workspace).update(plan=_plan_with(api_calls=20))
    quotas.quota_policy_forget(workspace_id=workspace.pk)

    with pytest.raises(QuotaExceeded) as refused:
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    assert refused.value.details == {**refused.value.details, "limit": 20, "used": 30}


def _plan_with(*, api_calls: int) -> Plan:
    return Plan.objects.create(tier=f"small{Plan.objects.count()}", name="Smaller", api_calls_per_month=api_calls)


def test_last_periods_usage_does_not_count(backend):
    workspace = workspace_on_plan(api_calls=5)
    policy = quotas.quota_policy(workspace_id=workspace.pk)
    previous = policy.period_start - timedelta(days=31)
    QuotaCounter.objects.create(workspace=workspace, metric=Metric.API_CALLS, period_start=previous, used=5)
    assert _admitted_until_refused(workspace.pk) == 5


def test_storage_is_measured_not_consumed(backend, monkeypatch):
    workspace = workspace_on_plan()
    monkeypatch.setattr(quotas, "_storage_measure", lambda workspace_id: 1000)  # restored after the test
    assert quota_check(workspace_id=workspace.pk, metric=Metric.STORAGE_BYTES, amount=24).used == 1000
    with pytest.raises(QuotaExceeded, match="of storage"):
        quota_check(workspace_id=workspace.pk, metric=Metric.STORAGE_BYTES, amount=25)
    with pytest.raises(ValueError, match="measured"):
        usage_consume(workspace_id=workspace.pk, metric=Metric.STORAGE_BYTES, amount=1)


def test_a_workspace_without_billing_state_starts_on_free():
    from accounts.tests.factories import WorkspaceFactory

    workspace = WorkspaceFactory.create()
    assert quotas.quota_policy(workspace_id=workspace.pk).tier == Tier.FREE
    assert quotas.quota_policy(workspace_id=workspace.pk).limit(Metric.API_CALLS) == 1_000


def test_the_flush_moves_admitted_usage_into_the_ledger_once():
    workspace = workspace_on_plan(api_calls=1000)
    for _ in range(40):
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    usage_consume(workspace_id=workspace.pk, metric=Metric.AI_OPERATIONS, amount=3)
    period = quotas.quota_policy(workspace_id=workspace.pk).period_start

    usage_flush()
    usage_flush()  # nothing new: nothing written twice

    assert quotas.usage_ledger_total(workspace_id=workspace.pk, metric=Metric.API_CALLS, period_start=period) == 40
    assert quotas.usage_ledger_total(workspace_id=workspace.pk, metric=Metric.AI_OPERATIONS, period_start=period) == 3
    counter = QuotaCounter.objects.get(workspace=workspace, metric=Metric.API_CALLS, period_start=period)
    assert counter.used == 40


def test_a_lost_redis_counter_is_rebuilt_from_the_ledger():
    workspace = workspace_on_plan(api_calls=50)
    for _ in range(30):
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    usage_flush()
    redis_counters = quotas.counters()
    assert isinstance(redis_counters, quotas.RedisCounters)
    policy = quotas.quota_policy(workspace_id=workspace.pk)
    redis_counters.client.delete(redis_counters.key(policy, Metric.API_CALLS))  # Redis restarted without data

    assert _admitted_until_refused(workspace.pk) == 20


# --- periods -------------------------------------------------------------------------------------------------------


def _account(**fields) -> BillingAccount:
    return BillingAccount(plan=Plan(tier=Tier.STARTER), **fields)


def test_free_workspaces_count_by_calendar_month_utc():
    start, end = period_for(_account(), datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_subscriptions_count_by_their_billing_period():
    account = _account(
        status=SubscriptionStatus.ACTIVE,
        period_start=datetime(2026, 11, 15, 10, tzinfo=UTC),
        period_end=datetime(2026, 12, 15, 10, tzinfo=UTC),
    )
    assert period_for(account, datetime(2026, 12, 1, tzinfo=UTC)) == (account.period_start, account.period_end)
    # The renewal webhook is late: the next period starts on time anyway.
    assert period_for(account, datetime(2026, 12, 20, tzinfo=UTC)) == (
        datetime(2026, 12, 15, 10, tzinfo=UTC),
        datetime(2027, 1, 15, 10, tzinfo=UTC),
    )


def test_a_period_from_the_31st_ends_on_the_last_day_of_a_short_month():
    account = _account(
        status=SubscriptionStatus.ACTIVE,
        period_start=datetime(2027, 1, 31, tzinfo=UTC),
        period_end=datetime(2027, 2, 28, tzinfo=UTC),
    )
    assert period_for(account, datetime(2027, 3, 1, tzinfo=UTC)) == (
        datetime(2027, 2, 28, tzinfo=UTC),
        datetime(2027, 3, 28, tzinfo=UTC),
    )


def test_a_canceled_subscription_counts_by_calendar_month():
    account = _account(
        status=SubscriptionStatus.CANCELED,
        period_start=datetime(2026, 11, 15, tzinfo=UTC),
        period_end=datetime(2026, 12, 15, tzinfo=UTC),
    )
    assert period_for(account, datetime(2026, 12, 20, tzinfo=UTC))[0] == datetime(2026, 12, 1, tzinfo=UTC)
