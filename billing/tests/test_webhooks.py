"""Stripe webhooks, signed and verified by dj-stripe, set the workspace's plan through every subscription state."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import quotas
from billing.models import BillingAccount, Metric, Plan, SubscriptionStatus, Tier
from billing.tests.factories import workspace_on_plan
from monitoring.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_account(stripe_api):
    """A workspace on Free whose Stripe customer exists (as after Checkout)."""
    workspace = workspace_on_plan()
    BillingAccount.objects.filter(workspace=workspace).update(plan=Plan.objects.get(tier=Tier.FREE))
    customer = stripe_api._route("POST", "customers", {"email": "owner@example.com", "metadata": {}})[1]
    BillingAccount.objects.filter(workspace=workspace).update(stripe_customer_id=customer["id"])
    return BillingAccount.objects.get(workspace=workspace)


def _price(stripe_api, tier: str):
    return stripe_api.objects[Plan.objects.get(tier=tier).stripe_price_id]


def _send(webhook, stripe_api, kind: str, subscription, *, created: int | None = None):
    response = webhook(stripe_api.event(kind, subscription, created=created))
    assert response.status_code == 200, response.content


def test_a_new_subscription_moves_the_workspace_to_its_plan(stripe_api, webhook, customer_account):
    subscription = stripe_api.subscription(
        customer=customer_account.stripe_customer_id, price=_price(stripe_api, Tier.STARTER)
    )

    _send(webhook, stripe_api, "customer.subscription.created", subscription)

    account = BillingAccount.objects.get(pk=customer_account.pk)
    assert account.plan.tier == Tier.STARTER
    assert account.status == SubscriptionStatus.ACTIVE
    assert account.stripe_subscription_id == subscription["id"]
    assert account.period_end is not None
    assert account.period_end > timezone.now() + timedelta(days=29)
    policy = quotas.quota_policy(workspace_id=account.workspace_id)
    assert policy.limit(Metric.API_CALLS) == 10_000
    assert policy.period_start == account.period_start
    assert AuditEvent.objects.get(action="billing.plan_change").detail == {
        "from": "free",
        "to": "starter",
        "status": "active",
    }

    from djstripe.models import Subscription

    assert Subscription.objects.filter(id=subscription["id"]).exists()  # dj-stripe mirrors it


def test_an_unsigned_or_forged_event_changes_nothing(stripe_api, webhook, customer_account):
    subscription = stripe_api.subscription(
        customer=customer_account.stripe_customer_id, price=_price(stripe_api, Tier.PROFESSIONAL)
    )
    response = webhook(stripe_api.event("customer.subscription.created", subscription), signing_secret="whsec_forged")
    assert response.status_code == 400
    assert BillingAccount.objects.get(pk=customer_account.pk).plan.tier == Tier.FREE


def test_a_replayed_event_applies_once_and_an_older_one_never_regresses(stripe_api, webhook, customer_account):
    customer = customer_account.stripe_customer_id
    subscription = stripe_api.subscription(customer=customer, price=_price(stripe_api, Tier.STARTER))
    created = stripe_api.event("customer.subscription.created", subscription, created=int(time.time()) - 60)
    webhook(created)
    stripe_api.update(
        subscription["id"],
        items={
            **subscription["items"],
            "data": [{**subscription["items"]["data"][0], "price": _price(stripe_api, Tier.PROFESSIONAL)}],
        },
    )
    upgraded = stripe_api.event("customer.subscription.updated", stripe_api.objects[subscription["id"]])
    assert webhook(upgraded).status_code == 200
    assert BillingAccount.objects.get(pk=customer_account.pk).plan.tier == Tier.PROFESSIONAL

    assert webhook(created).status_code == 200  # the same event delivered again
    late = stripe_api.event("customer.subscription.updated", subscription, created=int(time.time()) - 30)
    assert webhook(late).status_code == 200  # an older state arriving late
    assert BillingAccount.objects.get(pk=customer_account.pk).plan.tier == Tier.PROFESSIONAL
    assert AuditEvent.objects.filter(action="billing.plan_change").count() == 2


def test_past_due_keeps_the_plan_for_the_grace_period_then_counts_as_free(
    stripe_api, webhook, customer_account, settings
):
    settings.BILLING_PAST_DUE_GRACE_DAYS = 3
    customer = customer_account.stripe_customer_id
    subscription = stripe_api.subscription(customer=customer, price=_price(stripe_api, Tier.STARTER))
    _send(webhook, stripe_api, "customer.subscription.created", subscription, created=int(time.time()) - 10)
    stripe_api.update(subscription["id"], status="past_due")
    _send(webhook, stripe_api, "customer.subscription.updated", stripe_api.objects[subscription["id"]])

    account = BillingAccount.objects.get(pk=customer_account.pk)
    assert account.status == SubscriptionStatus.PAST_DUE
    assert account.plan.tier == Tier.STARTER
    assert account.grace_until is not None
    assert timedelta(days=2) < account.grace_until - timezone.now() <= timedelta(days=3)
    assert quotas.effective_plan(account, timezone.now()).tier == Tier.STARTER
    assert quotas.effective_plan(account, account.grace_until + timedelta(seconds=1)).tier == Tier.FREE

    stripe_api.update(subscription["id"], status="active")
    _send(webhook, stripe_api, "customer.subscription.updated", stripe_api.objects[subscription["id"]])
    account.refresh_from_db()
    assert account.status == SubscriptionStatus.ACTIVE
    assert account.grace_until is None


def test_cancellation_keeps_the_plan_until_the_period_ends(stripe_api, webhook, customer_account):
    customer = customer_account.stripe_customer_id
    subscription = stripe_api.subscription(customer=customer, price=_price(stripe_api, Tier.STARTER))
    _send(webhook, stripe_api, "customer.subscription.created", subscription, created=int(time.time()) - 10)
    stripe_api.update(subscription["id"], cancel_at_period_end=True)
    _send(
        webhook,
        stripe_api,
        "customer.subscription.updated",
        stripe_api.objects[subscription["id"]],
        created=int(time.time()) - 5,
    )
    account = BillingAccount.objects.get(pk=customer_account.pk)
    assert account.plan.tier == Tier.STARTER
    assert account.cancel_at_period_end

    stripe_api.update(subscription["id"], status="canceled", ended_at=int(time.time()))
    _send(webhook, stripe_api, "customer.subscription.deleted", stripe_api.objects[subscription["id"]])
    account.refresh_from_db()
    assert account.plan.tier == Tier.FREE
    assert account.status == SubscriptionStatus.CANCELED
    assert quotas.quota_policy(workspace_id=account.workspace_id).limit(Metric.API_CALLS) == 1_000


@pytest.mark.parametrize(
    ("status", "tier", "stored_status"),
    [
        ("trialing", Tier.PROFESSIONAL, SubscriptionStatus.TRIALING),
        ("unpaid", Tier.FREE, SubscriptionStatus.CANCELED),
        ("incomplete_expired", Tier.FREE, SubscriptionStatus.CANCELED),
        ("incomplete", Tier.FREE, SubscriptionStatus.NONE),  # the first payment is still being attempted
    ],
)
def test_other_subscription_states(stripe_api, webhook, customer_account, status, tier, stored_status):
    subscription = stripe_api.subscription(
        customer=customer_account.stripe_customer_id, price=_price(stripe_api, Tier.PROFESSIONAL), status=status
    )
    _send(webhook, stripe_api, "customer.subscription.created", subscription)
    account = BillingAccount.objects.get(pk=customer_account.pk)
    assert account.plan.tier == tier
    assert account.status == stored_status


def test_a_past_due_workspace_sees_a_warning_in_the_console(stripe_api, webhook, customer_account, client):
    from accounts.models import Role
    from accounts.tests.factories import MembershipFactory

    owner = MembershipFactory.create(workspace=customer_account.workspace, role=Role.OWNER)
    subscription = stripe_api.subscription(
        customer=customer_account.stripe_customer_id, price=_price(stripe_api, Tier.STARTER), status="past_due"
    )
    _send(webhook, stripe_api, "customer.subscription.updated", subscription)
    client.force_login(owner.user)
    page = client.get(f"/console/w/{customer_account.workspace_id}/").content.decode()
    assert "The last payment failed" in page
