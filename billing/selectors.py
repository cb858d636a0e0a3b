"""Reads on plans and billing state."""

from django.db.models import QuerySet

from accounts.models import Workspace
from billing.models import Plan
from billing.quotas import billing_account_get


def plan_list_public() -> QuerySet[Plan]:
    return Plan.objects.filter(is_public=True).order_by("sort_order")


def plan_active_key_limit(workspace: Workspace) -> int | None:
    return billing_account_get(workspace_id=workspace.pk).plan.max_active_api_keys
