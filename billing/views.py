"""The public pricing page and the console's Billing page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Membership
from accounts.views import SignedInRequest, workspace_page
from billing import quotas, selectors


def pricing(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/pricing.html", {"plans": selectors.plan_list_public()})


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
    }
    return render(request, "billing/billing.html", context)
