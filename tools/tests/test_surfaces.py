"""The Tools page and API: what a member or key sees, and trying a tool (which counts as usage)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from billing.models import Metric
from billing.quotas import quota_usage

pytestmark = pytest.mark.django_db


def test_the_tools_page_lists_the_visible_tools_and_tries_one(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    page = client.get(reverse("console:tools", args=[workspace.pk])).content.decode()
    assert 'id="tool-whoami"' in page
    assert ">Tools</a>" in page

    tried = client.post(reverse("console:tool_try", args=[workspace.pk, "whoami"]), {"arguments": "{}"})
    assert f"Workspace {workspace.name} on the Free plan." in tried.content.decode()
    used = {quota.metric: quota.used for quota in quota_usage(workspace_id=workspace.pk)}
    assert used[Metric.API_CALLS] == 1

    bad = client.post(reverse("console:tool_try", args=[workspace.pk, "find_tools"]), {"arguments": "[1, 2"})
    assert "The arguments are not a JSON object" in bad.content.decode()
    assert client.get(reverse("console:tool_try", args=[workspace.pk, "nope"])).status_code == 404


def test_the_api_lists_and_calls_tools_for_a_key_within_its_scopes():
    workspace, (owner,) = workspace_with(Role.OWNER)
    other, _members = workspace_with(Role.OWNER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key(owner, tools=['whoami']).secret}")

    listed = client.get(f"/api/v1/workspaces/{workspace.pk}/tools/").json()
    assert [tool["name"] for tool in listed] == ["whoami"]
    called = client.post(f"/api/v1/workspaces/{workspace.pk}/tools/whoami/call/", {"arguments": {}}, format="json")
    assert called.status_code == 200
    assert called.json()["structured"]["plan"] == "free"
    hidden = client.post(f"/api/v1/workspaces/{workspace.pk}/tools/get_usage/call/", {}, format="json")
    assert hidden.status_code == 404
    assert client.get(f"/api/v1/workspaces/{other.pk}/tools/").status_code == 404


def test_the_try_it_form_starts_from_the_schema_defaults(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    page = client.get(reverse("console:tool_try", args=[workspace.pk, "find_tools"])).content.decode()
    assert "&quot;top_k&quot;: 5" in page


def test_a_professional_workspace_adds_and_deletes_its_own_http_tool(client):
    from billing.models import BillingAccount, Plan, Tier
    from tools.models import Tool

    workspace, (owner,) = workspace_with(Role.OWNER)
    client.force_login(owner.user)
    assert (
        "available on the Professional and Enterprise plans"
        in client.get(reverse("console:tools", args=[workspace.pk])).content.decode()
    )
    BillingAccount.objects.filter(workspace=workspace).update(plan=Plan.objects.get(tier=Tier.PROFESSIONAL))

    form = {
        "name": "crm_lookup",
        "title": "CRM lookup",
        "description": "Find a customer",
        "http_method": "GET",
        "http_url_template": "https://crm.example.com/customers/{id}",
        "http_headers": "{}",
        "input_schema": '{"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}',
        "http_credentials": "Bearer crm-secret-123",
        "security_level": 2,
        "read_only": "on",
    }
    bad = client.post(
        reverse("console:custom_tool_new", args=[workspace.pk]), {**form, "input_schema": '{"type": "str"}'}
    )
    assert "not valid JSON Schema 2020-12" in bad.content.decode()
    created = client.post(reverse("console:custom_tool_new", args=[workspace.pk]), form, follow=True)
    page = created.content.decode()
    assert "Tool crm_lookup added" in page
    assert 'id="tool-crm_lookup"' in page
    assert "crm-secret-123" not in page
    assert Tool.objects.get(name="crm_lookup").workspace_id == workspace.pk

    client.post(reverse("console:custom_tool_delete", args=[workspace.pk, "crm_lookup"]))
    assert not Tool.objects.filter(name="crm_lookup").exists()
    assert client.post(reverse("console:custom_tool_delete", args=[workspace.pk, "whoami"])).status_code == 404
