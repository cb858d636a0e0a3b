"""The public pricing page, the console's Billing page, and the hand-offs to Stripe Checkout and the portal."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Membership, Role
from accounts.selectors import membership_list_for_user
from accounts.views import SESSION_WORKSPACE, SignedInRequest, workspace_page
from billing import payments, quotas, selectors
from core.errors import ToolportError


def pricing(request: HttpRequest) -> HttpResponse:
    context = {"plans": selectors.plan_list_public(), "payments_configured": payments.payments_configured()}
    return render(request, "billing/pricing.html", context)


@login_required
@require_POST
def pricing_checkout(request: SignedInRequest, tier: str) -> HttpResponse:
    """Choose a plan on the pricing page: Checkout for the workspace open in the console (or the first one owned)."""
    memberships = list(membership_list_for_user(user=request.user))
    remembered = request.session.get(SESSION_WORKSPACE)
    membership = next((m for m in memberships if str(m.workspace_id) == remembered), None) or next(
        (m for m in memberships if m.role == Role.OWNER), None
    )
    if membership is None:
        return redirect("console:home")
    return _to_stripe(
        request, membership, lambda: payments.checkout_start(actor=membership, tier=tier, request=request)
    )


def _to_stripe(request: HttpRequest, membership: Membership, start: Callable[[], str]) -> HttpResponse:
    """Redirect to the Stripe page `start` returns, or back to Billing with the reason it could not."""
    try:
        url = start()
    except ToolportError as error:
        messages.error(request, error.message)
        return redirect("console:billing", membership.workspace_id)
    return redirect(url)


@workspace_page
def billing_page(request: SignedInRequest, membership: Membership) -> HttpResponse:
    account = quotas.billing_account_get(workspace_id=membership.workspace_id)
    policy = quotas.quota_policy(workspace_id=membership.workspace_id)
    context = {
        "title": "Billing",
        "section": "billing",
        "account": account,
        "period_start": policy.period_start,
        "period_end": policy.period_end,
        "usage": quotas.quota_usage(workspace_id=membership.workspace_id),
        "plans": selectors.plan_list_public(),
        "is_owner": membership.role == Role.OWNER,
        "payments_configured": payments.payments_configured(),
        "invoices": selectors.invoice_list(account=account),
        "checkout": request.GET.get("checkout"),
    }
    return render(request, "billing/billing.html", context)


@require_POST
@workspace_page
def checkout(request: SignedInRequest, membership: Membership, tier: str) -> HttpResponse:
    """Send the owner to Stripe Checkout for the chosen plan."""
    return _to_stripe(
        request, membership, lambda: payments.checkout_start(actor=membership, tier=tier, request=request)
    )


@require_POST
@workspace_page
def portal(request: SignedInRequest, membership: Membership) -> HttpResponse:
    """Send the owner to the Stripe customer portal (payment method, plan changes, cancellation)."""
    return _to_stripe(request, membership, lambda: payments.portal_start(actor=membership))
