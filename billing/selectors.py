"""Reads on plans and billing state."""

from typing import Any

from django.db.models import QuerySet

from accounts.models import Membership, Workspace
from billing.models import BillingAccount, Metric, Plan, SubscriptionStatus
from billing.quotas import billing_account_get, quota_usage


def plan_list_public() -> QuerySet[Plan]:
    return Plan.objects.filter(is_public=True).order_by("sort_order")


def plan_active_key_limit(workspace: Workspace) -> int | None:
    return billing_account_get(workspace_id=workspace.pk).plan.max_active_api_keys


def quota_banner(membership: Membership) -> str | None:
    """The console's notice when a payment is past due, or a quota of this workspace is used up."""
    account = billing_account_get(workspace_id=membership.workspace_id)
    if account.status == SubscriptionStatus.PAST_DUE and account.grace_until:
        return (
            f"The last payment failed. The {account.plan.name} plan is kept until {account.grace_until:%Y-%m-%d} UTC; "
            "update the payment method on the Billing page to keep it."
        )
    used_up = [
        quota
        for quota in quota_usage(workspace_id=membership.workspace_id)
        if quota.limit is not None and quota.percent >= 100
    ]
    if not used_up:
        return None
    names = " and ".join(Metric(quota.metric).label for quota in used_up)
    return (
        f"This workspace has used all its {names} for this period: calls that need them are refused until "
        f"{used_up[0].resets_at:%Y-%m-%d %H:%M} UTC. Upgrade the plan on the Billing page for more."
    )


def invoice_list(*, account: BillingAccount, limit: int = 12) -> list[Any]:
    """The workspace's past invoices, newest first, as dj-stripe mirrors them from Stripe."""
    if not account.stripe_customer_id:
        return []
    from djstripe.models import Invoice

    return list(Invoice.objects.filter(customer__id=account.stripe_customer_id).order_by("-created")[:limit])
