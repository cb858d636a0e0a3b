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


def _professional(workspace) -> None:
    from billing.models import Plan, Tier
    from billing.quotas import billing_account_get

    account = billing_account_get(workspace_id=workspace.pk)
    account.plan = Plan.objects.get(tier=Tier.PROFESSIONAL)
    account.save()


def test_a_custom_tool_is_edited_in_place_and_its_credential_stays_unless_replaced(client):
    from tools.models import Tool

    workspace, (owner,) = workspace_with(Role.OWNER)
    _professional(workspace)
    client.force_login(owner.user)
    form = {
        "name": "crm_lookup",
        "description": "Find a customer",
        "http_method": "GET",
        "http_url_template": "https://crm.example.com/customers/{id}",
        "http_headers": "{}",
        "input_schema": '{"type": "object", "properties": {"id": {"type": "string"}}}',
        "http_credentials": "Bearer crm-secret-123",
        "security_level": 2,
    }
    created = client.post(reverse("console:custom_tool_new", args=[workspace.pk]), form)
    assert created.status_code == 302, created.content.decode()
    edit_url = reverse("console:custom_tool_edit", args=[workspace.pk, "crm_lookup"])

    page = client.get(edit_url).content.decode()
    assert "https://crm.example.com/customers/{id}" in page
    assert "A credential is stored" in page
    assert "crm-secret-123" not in page

    saved = client.post(
        edit_url, {**form, "http_credentials": "", "description": "Find a customer by id", "read_only": "on"}
    )
    assert saved.status_code == 302
    tool = Tool.objects.get(workspace=workspace, name="crm_lookup")
    assert (tool.description, tool.read_only, tool.http_credentials) == (
        "Find a customer by id",
        True,
        "Bearer crm-secret-123",
    )
    invalid = client.post(edit_url, {**form, "input_schema": '{"type": "str"}'})
    assert "not valid JSON Schema 2020-12" in invalid.content.decode()
    assert Tool.objects.get(workspace=workspace, name="crm_lookup").input_schema["type"] == "object"  # unchanged
    assert client.get(reverse("console:custom_tool_edit", args=[workspace.pk, "whoami"])).status_code == 404


def test_custom_tools_have_a_rest_twin_with_a_write_only_credential():
    workspace, (owner, member) = workspace_with(Role.OWNER, Role.MEMBER)
    _professional(workspace)
    api = APIClient()
    api.force_authenticate(owner.user)
    base = f"/api/v1/workspaces/{workspace.pk}/custom-tools/"
    body = {
        "name": "crm_lookup",
        "description": "Find a customer",
        "http_url_template": "https://crm.example.com/customers/{id}",
        "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
        "http_credentials": "Bearer crm-secret-123",
    }

    created = api.post(base, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["has_credentials"] is True
    assert "crm-secret-123" not in created.content.decode()
    changed = api.patch(f"{base}crm_lookup/", {"description": "By id", "read_only": True}, format="json")
    assert (changed.json()["description"], changed.json()["read_only"]) == ("By id", True)
    bad = api.patch(f"{base}crm_lookup/", {"input_schema": {"type": "string"}}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_tool")

    as_member = APIClient()
    as_member.force_authenticate(member.user)
    assert as_member.delete(f"{base}crm_lookup/").status_code == 403
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key(owner).secret}")
    assert keyed.get(base).status_code == 403
    _other, (stranger,) = workspace_with(Role.OWNER)
    as_stranger = APIClient()
    as_stranger.force_authenticate(stranger.user)
    assert as_stranger.get(f"{base}crm_lookup/").status_code == 404

    assert api.delete(f"{base}crm_lookup/").status_code == 204
    assert api.get(f"{base}crm_lookup/").status_code == 404
