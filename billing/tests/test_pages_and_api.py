"""What people see of plans and quotas: the pricing page, the console's Billing page, the API, and the 429."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import workspace_with
from billing.models import BillingAccount, Metric, Plan, Tier
from billing.quotas import QuotaExceeded, usage_consume
from core.api import exception_handler

pytestmark = pytest.mark.django_db


def test_the_pricing_page_compares_the_tiers(client):
    page = client.get("/pricing/").content.decode()
    for name, price in (("Free", "$0"), ("Starter", "$29"), ("Professional", "$99"), ("Enterprise", "Custom")):
        assert f"<h3>{name}</h3>" in page
        assert price in page
    assert "10,000 API calls / month" in page
    assert "Unlimited API calls / month" in page


def test_the_billing_page_shows_the_plan_period_and_usage(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.STARTER))
    for _ in range(3):
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    client.force_login(owner.user)

    page = client.get(reverse("console:billing", args=[workspace.pk])).content.decode()

    assert "Starter plan" in page
    assert "3 of 10,000" in page
    assert "quotas reset on" in page
    assert 'id="plan-starter"' in page
    assert ">Billing</a>" in page


def test_a_used_up_quota_is_said_plainly(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    Plan.objects.filter(tier=Tier.FREE).update(api_calls_per_month=2)
    usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS, amount=2)
    client.force_login(owner.user)
    page = client.get(reverse("console:billing", args=[workspace.pk])).content.decode()
    assert "Used up: new calls are refused until" in page


def test_the_api_reports_plan_and_usage_to_members_only():
    workspace, (member,) = workspace_with(Role.MEMBER)
    _other, (outsider,) = workspace_with(Role.OWNER)
    client = APIClient()
    client.force_authenticate(member.user)
    body = client.get(f"/api/v1/workspaces/{workspace.pk}/billing/").json()
    assert body["plan"]["tier"] == "free"
    assert {quota["metric"] for quota in body["usage"]} == {"api_calls", "ai_operations", "storage_bytes"}
    client.force_authenticate(outsider.user)
    assert client.get(f"/api/v1/workspaces/{workspace.pk}/billing/").status_code == 404
    assert len(APIClient().get("/api/v1/plans/").json()) == 4


def test_quota_exceeded_is_a_429_with_retry_after_and_the_upgrade_url():
    workspace, _members = workspace_with(Role.OWNER)
    Plan.objects.filter(tier=Tier.FREE).update(api_calls_per_month=0)
    with pytest.raises(QuotaExceeded) as refused:
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)

    response = exception_handler(refused.value, {})

    assert response is not None
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.data["code"] == "quota_exceeded"
    assert response.data["details"]["upgrade_url"].endswith(f"/console/w/{workspace.pk}/billing/")
