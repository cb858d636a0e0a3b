"""Credentials never leave: not in any response (API, console, admin) and not in any log line, on success or
failure."""

import logging

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from tools import services
from tools.models import Tool, ToolKind, UpstreamServer

pytestmark = pytest.mark.django_db

TOOL_SECRET = "sk-tool-credential-4f1e9a"
UPSTREAM_SECRET = "up-credential-8d2c71"


def test_credentials_appear_in_no_response_and_no_log_line(caplog, admin_client, client, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    caplog.set_level(logging.DEBUG)
    workspace, (owner,) = workspace_with(Role.OWNER)
    services.tool_save(
        tool=Tool(
            name="leaky",
            kind=ToolKind.HTTP,
            description="x",
            input_schema={"type": "object"},
            security_level=1,
            http_url_template="http://10.0.0.1/never-called",
            http_credentials=f"Bearer {TOOL_SECRET}",
        )
    )
    server = UpstreamServer.objects.create(
        name="remote", url="http://10.0.0.2/mcp", credentials=f"Bearer {UPSTREAM_SECRET}", default_security_level=1
    )
    issued = issue_key(owner)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    client.force_login(owner.user)

    bodies = [
        api.get("/api/v1/whoami").content,
        api.get(f"/api/v1/workspaces/{workspace.pk}/tools/").content,
        api.post(f"/api/v1/workspaces/{workspace.pk}/tools/leaky/call/", {"arguments": {}}, format="json").content,
        APIClient().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {issued.secret}x").content,  # a wrong key
        client.get(f"/console/w/{workspace.pk}/tools/leaky/").content,
        client.post(f"/console/w/{workspace.pk}/tools/leaky/", {"arguments": "{}"}).content,
        client.get(f"/console/w/{workspace.pk}/api-keys/").content,
        admin_client.get(f"/admin/tools/tool/{Tool.objects.get(name='leaky').pk}/change/").content,
        admin_client.get("/admin/accounts/apikey/").content,
        admin_client.get(f"/admin/tools/upstreamserver/{server.pk}/change/").content,
        admin_client.get(f"/admin/tools/upstreamserver/{server.pk}/import/", follow=True).content,  # refused
        admin_client.get("/admin/tools/upstreamserver/").content,
    ]

    key_secret = issued.secret.removeprefix(issued.key.prefix + "_")
    for body in bodies:
        assert TOOL_SECRET.encode() not in body
        assert UPSTREAM_SECRET.encode() not in body
        assert key_secret.encode() not in body
    assert b"refused" in bodies[2].lower()  # the call itself failed safely (private address), with a reason
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert TOOL_SECRET not in logged
    assert UPSTREAM_SECRET not in logged
    assert b"private address" in bodies[-2]  # the import was refused with a reason, the secret still not shown
    assert key_secret not in logged


def test_staff_see_keys_and_workspaces_in_the_admin_but_never_a_hash(admin_client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, name="listed key")
    listing = admin_client.get("/admin/accounts/apikey/").content.decode()
    assert issued.key.prefix in listing
    detail = admin_client.get(f"/admin/accounts/apikey/{issued.key.pk}/change/").content.decode()
    assert issued.key.secret_hash not in detail
    assert workspace.name in admin_client.get("/admin/accounts/workspace/").content.decode()
