"""Payments through Stripe: Checkout to subscribe, the customer portal to manage, and the webhook events that set a
workspace's plan. The Stripe customer is the workspace; dj-stripe verifies and mirrors every webhook event, and its
signals call `subscription_apply` here.
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership, Role
from billing.models import BillingAccount, Plan, SubscriptionStatus, Tier
from billing.quotas import billing_account_get, quota_policy_forget
from core.audit import audit_record
from core.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)


class PaymentsNotConfigured(Conflict):
    code = "payments_not_configured"


def stripe_api_key() -> str:
    return settings.STRIPE_LIVE_SECRET_KEY if settings.STRIPE_LIVE_MODE else settings.STRIPE_TEST_SECRET_KEY


def payments_configured() -> bool:
    return bool(stripe_api_key())


def _require_configured() -> str:
    key = stripe_api_key()
    if not key:
        raise PaymentsNotConfigured(
            "Payments are not configured on this server: set STRIPE_TEST_SECRET_KEY (or STRIPE_LIVE_SECRET_KEY with "
            "STRIPE_LIVE_MODE=true), run `manage.py billing_sync_plans`, and add a webhook endpoint in the admin."
        )
    return key


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _customer_ensure(account: BillingAccount, owner_email: str, api_key: str) -> str:
    """The workspace's Stripe customer, created on first use."""
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = stripe.Customer.create(
        api_key=api_key,
        email=owner_email,
        name=account.workspace.name,
        metadata={"toolport_workspace_id": str(account.workspace_id)},
    )
    account.stripe_customer_id = customer["id"]
    account.save(update_fields=["stripe_customer_id", "updated_at"])
    return account.stripe_customer_id


@transaction.atomic
def checkout_start(*, actor: Membership, tier: str, request: Any = None) -> str:
    """A Stripe Checkout URL that subscribes the actor's workspace to a paid plan (owners only)."""
    actor.require_role(Role.OWNER, "change the plan")
    api_key = _require_configured()
    plan = Plan.objects.filter(tier=tier, is_public=True).first()
    if plan is None or plan.tier == Tier.FREE:
        raise InvalidInput("Choose a paid plan to upgrade to.", details={"field": "tier"})
    if not plan.stripe_price_id:
        raise InvalidInput(
            f"The {plan.name} plan is not for sale online. Contact us, or ask staff to run `billing_sync_plans`.",
            details={"field": "tier"},
        )
    account = (
        BillingAccount.objects.select_for_update()
        .select_related("workspace")
        .get(pk=billing_account_get(workspace_id=actor.workspace_id).pk)
    )
    billing_url = reverse("console:billing", args=[actor.workspace_id])
    session = stripe.checkout.Session.create(
        api_key=api_key,
        mode="subscription",
        customer=_customer_ensure(account, actor.user.email, api_key),
        client_reference_id=str(actor.workspace_id),
        line_items=[{"price": plan.stripe_price_id, "quantity": 1}],
        subscription_data={"metadata": {"toolport_workspace_id": str(actor.workspace_id)}},
        success_url=_absolute(billing_url + "?checkout=success"),
        cancel_url=_absolute(billing_url + "?checkout=canceled"),
    )
    audit_record(
        action="billing.checkout_start",
        actor=actor.user,
        workspace=actor.workspace,
        request=request,
        detail={"tier": plan.tier, "session": session["id"]},
    )
    return str(session["url"])


def portal_start(*, actor: Membership) -> str:
    """A Stripe customer portal URL for the workspace's payment method, plan changes and cancellation."""
    actor.require_role(Role.OWNER, "manage the subscription")
    api_key = _require_configured()
    account = billing_account_get(workspace_id=actor.workspace_id)
    if not account.stripe_customer_id:
        raise InvalidInput("This workspace has no subscription to manage yet: choose a plan first.")
    session = stripe.billing_portal.Session.create(
        api_key=api_key,
        customer=account.stripe_customer_id,
        return_url=_absolute(reverse("console:billing", args=[actor.workspace_id])),
    )
    return str(session["url"])


# --- webhook events -------------------------------------------------------------------------------------------------


def _object_id(value: Any) -> str:
    return value.get("id", "") if isinstance(value, dict) else str(value or "")


def _period(subscription: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """Current period bounds: on the subscription (older API versions) or on its first item (2025-03-31 on)."""
    items = (subscription.get("items") or {}).get("data") or [{}]
    start = subscription.get("current_period_start") or items[0].get("current_period_start")
    end = subscription.get("current_period_end") or items[0].get("current_period_end")
    to_time = lambda stamp: datetime.fromtimestamp(stamp, tz=UTC) if stamp else None  # noqa: E731
    return to_time(start), to_time(end)


def _price_id(subscription: dict[str, Any]) -> str:
    items = (subscription.get("items") or {}).get("data") or []
    return _object_id(items[0].get("price")) if items else ""


@transaction.atomic
def checkout_completed(*, session: dict[str, Any]) -> None:
    """Tie the Stripe customer to the workspace named in the session (if the customer was created by Checkout)."""
    workspace_id, customer = session.get("client_reference_id"), _object_id(session.get("customer"))
    if not workspace_id or not customer:
        return
    BillingAccount.objects.filter(workspace_id=workspace_id, stripe_customer_id="").update(stripe_customer_id=customer)


@transaction.atomic
def subscription_apply(*, subscription: dict[str, Any], event_created: datetime) -> BillingAccount | None:
    """Set a workspace's plan from a subscription as a webhook event saw it.

    active / trialing → the subscribed plan; past_due → the plan is kept for BILLING_PAST_DUE_GRACE_DAYS, then Free;
    canceled (the subscription has ended) or unpaid → Free. An event older than the last one applied is ignored, so
    replays and out-of-order deliveries never regress the state.
    """
    customer = _object_id(subscription.get("customer"))
    workspace_id = (subscription.get("metadata") or {}).get("toolport_workspace_id")
    accounts = BillingAccount.objects.select_for_update().select_related("plan", "workspace")
    account = accounts.filter(stripe_customer_id=customer).first() if customer else None
    if account is None and workspace_id:
        account = accounts.filter(workspace_id=workspace_id).first()
    if account is None:
        logger.warning("Stripe subscription %s belongs to no workspace (customer %s)", subscription.get("id"), customer)
        return None
    if account.last_event_at and event_created < account.last_event_at:
        return account  # a late or replayed event: newer state is already applied

    status = subscription.get("status", "")
    old_plan = account.plan
    free = Plan.objects.get(tier=Tier.FREE)
    subscribed = Plan.objects.filter(stripe_price_id=_price_id(subscription)).first() or account.plan
    account.stripe_customer_id = customer or account.stripe_customer_id
    account.stripe_subscription_id = subscription.get("id", "")
    account.period_start, account.period_end = _period(subscription)
    account.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        account.plan, account.status, account.grace_until = subscribed, status, None
    elif status == SubscriptionStatus.PAST_DUE:
        account.plan = subscribed
        account.status = SubscriptionStatus.PAST_DUE
        account.grace_until = account.grace_until or event_created + timedelta(
            days=settings.BILLING_PAST_DUE_GRACE_DAYS
        )
    elif status in ("canceled", "unpaid", "incomplete_expired"):
        account.plan, account.status, account.grace_until = free, SubscriptionStatus.CANCELED, None
    else:  # incomplete: the first payment is still being attempted; nothing changes yet
        return account
    account.last_event_at = event_created
    account.save()
    if account.plan != old_plan:
        audit_record(
            action="billing.plan_change",
            workspace=account.workspace,
            target=account,
            detail={"from": old_plan.tier, "to": account.plan.tier, "status": account.status},
        )
    transaction.on_commit(lambda: quota_policy_forget(workspace_id=account.workspace_id))
    return account


def plans_sync_to_stripe() -> list[tuple[Plan, str]]:
    """Create or find each paid plan's Stripe Product and monthly Price (by lookup key) and store their ids.

    Idempotent: a price whose lookup key and amount already match is reused; a changed amount gets a new price (the
    lookup key moves to it), as Stripe prices are immutable.
    """
    from djstripe.models import Price as MirroredPrice
    from djstripe.models import Product as MirroredProduct

    api_key = _require_configured()
    results = []
    for plan in Plan.objects.filter(price_cents__gt=0).order_by("sort_order"):
        lookup_key = f"toolport_{plan.tier}_monthly"
        found = list(stripe.Price.list(api_key=api_key, lookup_keys=[lookup_key], active=True, limit=1).data)
        if found and found[0].unit_amount == plan.price_cents and found[0].currency == plan.currency:
            price, outcome = found[0], "unchanged"
        else:
            product_id = (
                plan.stripe_product_id
                or stripe.Product.create(
                    api_key=api_key, name=f"Toolport {plan.name}", metadata={"toolport_tier": plan.tier}
                )["id"]
            )
            price = stripe.Price.create(
                api_key=api_key,
                product=product_id,
                currency=plan.currency,
                unit_amount=plan.price_cents or 0,
                recurring={"interval": "month"},
                lookup_key=lookup_key,
                transfer_lookup_key=True,
                metadata={"toolport_tier": plan.tier},
            )
            outcome = "created"
        product_id = _object_id(price["product"])
        MirroredProduct.sync_from_stripe_data(stripe.Product.retrieve(product_id, api_key=api_key), api_key=api_key)
        MirroredPrice.sync_from_stripe_data(price, api_key=api_key)
        Plan.objects.filter(pk=plan.pk).update(stripe_product_id=product_id, stripe_price_id=price["id"])
        results.append((plan, outcome))
    return results
