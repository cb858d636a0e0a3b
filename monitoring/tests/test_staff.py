"""The staff overview (calls of every workspace, busiest workspaces, MRR by plan from dj-stripe's mirror of signed
webhooks, ingestion, circuit breakers) and the audit log viewer's filters; neither is open to non-staff."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, UserFactory
from billing.models import BillingAccount, Plan, Tier
from billing.tests.factories import workspace_on_plan
from core.audit import audit_record
from monitoring.calls import CallStatus, ToolCall, Transport
from monitoring.models import AuditEvent
from monitoring.usage import usage_events_write, usage_rollup_all
from tools.models import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

OVERVIEW = "/admin/monitoring/auditevent/overview/"


def _calls(workspace_id, count: int, status=CallStatus.OK) -> list[ToolCall]:
    now = datetime.now(UTC).timestamp()
    return [
        ToolCall(
            workspace_id=workspace_id, tool="echo", status=status, latency_ms=5, transport=Transport.WEBSOCKET, at=now
        )
        for _ in range(count)
    ]


def _subscribe(stripe_api, webhook, tier: str) -> None:
    workspace = workspace_on_plan()
    customer = stripe_api._route("POST", "customers", {"email": "owner@example.com", "metadata": {}})[1]
    BillingAccount.objects.filter(workspace=workspace).update(stripe_customer_id=customer["id"])
    price = stripe_api.objects[Plan.objects.get(tier=tier).stripe_price_id]
    subscription = stripe_api.subscription(customer=customer["id"], price=price)
    assert webhook(stripe_api.event("customer.subscription.created", subscription)).status_code == 200


def test_the_overview_sums_every_workspace_and_the_revenue(admin_client, stripe_api, webhook):
    busy = MembershipFactory.create(workspace__name="Busy Inc").workspace
    quiet = MembershipFactory.create(workspace__name="Quiet LLC").workspace
    usage_events_write(_calls(busy.pk, 40) + _calls(busy.pk, 10, CallStatus.TOOL_ERROR) + _calls(quiet.pk, 5))
    usage_rollup_all()  # the beat's minute
    for _ in range(2):
        _subscribe(stripe_api, webhook, Tier.STARTER)
    _subscribe(stripe_api, webhook, Tier.PROFESSIONAL)
    UpstreamServer.objects.create(
        name="weather", url="https://weather.example.com/mcp", circuit_opened_at=timezone.now(), consecutive_failures=5
    )

    page = admin_client.get(OVERVIEW).content.decode()
    workspaces = page[page.index('id="overview-workspaces"') :]
    assert workspaces.index("Busy Inc") < workspaces.index("Quiet LLC")
    assert "50 calls" in workspaces
    assert "10 errors" in workspaces
    mrr = page[page.index('id="overview-mrr"') : page.index('id="overview-workspaces"')]
    assert "Starter" in mrr
    assert "58.00 USD" in mrr  # two Starter subscriptions at $29
    assert "99.00 USD" in mrr
    circuits = page[page.index('id="overview-circuits"') :]
    assert "weather" in circuits
    assert "open" in circuits
    assert '"total": 55' in page  # the charts' data: every workspace's calls


def test_the_overview_and_audit_log_are_for_staff_only(client):
    member = MembershipFactory.create(role=Role.OWNER)
    client.force_login(member.user)
    assert client.get(OVERVIEW).status_code == 302  # to the admin's sign-in
    assert client.get("/admin/monitoring/auditevent/").status_code == 302


def test_the_audit_log_filters_by_actor_workspace_action_and_time(admin_client):
    alice, bob = UserFactory.create(email="alice@example.com"), UserFactory.create(email="bob@example.com")
    first = MembershipFactory.create(workspace__name="First").workspace
    second = MembershipFactory.create(workspace__name="Second").workspace
    audit_record(action="api_key.create", actor=alice, workspace=first, detail={})
    audit_record(action="api_key.revoke", actor=bob, workspace=second, detail={})
    old = AuditEvent.objects.create(action="workspace.rename", actor_email="alice@example.com", workspace=first)
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    def listed(query: str) -> set[str]:
        page = admin_client.get(f"/admin/monitoring/auditevent/?{query}").content.decode()
        return {action for action in ("api_key.create", "api_key.revoke", "workspace.rename") if action in page}

    assert listed("actor_email__icontains=alice") == {"api_key.create", "workspace.rename"}
    assert listed(f"workspace__id__exact={second.pk}") == {"api_key.revoke"}
    assert listed("action__exact=api_key.revoke") == {"api_key.revoke"}
    assert listed("within=7d") == {"api_key.create", "api_key.revoke"}
    assert listed("within=30d") == {"api_key.create", "api_key.revoke", "workspace.rename"}
    assert listed("q=bob") == {"api_key.revoke"}
