"""Staff manage upstream servers and test tools from the admin; credentials are write-only."""

import pytest

from accounts.models import Role
from accounts.tests.factories import workspace_with
from monitoring.models import AuditEvent
from tools.models import Tool, UpstreamServer

pytestmark = pytest.mark.django_db


def test_staff_add_a_server_with_a_write_only_credential_and_import_it(admin_client, upstream):
    response = admin_client.post(
        "/admin/tools/upstreamserver/add/",
        {
            "name": "fixture",
            "url": upstream.url,
            "transport": "streamable_http",
            "enabled": "on",
            "default_security_level": "1",
            "new_credentials": "Bearer staff-set-token",
            "resources-TOTAL_FORMS": "0",
            "resources-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    server = UpstreamServer.objects.get(name="fixture")
    assert server.credentials == "Bearer staff-set-token"
    assert AuditEvent.objects.filter(action="upstream.create").exists()

    page = admin_client.get(f"/admin/tools/upstreamserver/{server.pk}/import/", follow=True).content.decode()

    assert "3 new" in page
    assert "staff-set-token" not in page
    assert Tool.objects.filter(upstream=server).count() == 3
    assert set(upstream.seen()["authorization"][-3:]) == {"Bearer staff-set-token"}

    # Saving again without a new credential keeps the stored one.
    admin_client.post(
        f"/admin/tools/upstreamserver/{server.pk}/change/",
        {
            "name": "fixture",
            "url": upstream.url,
            "transport": "streamable_http",
            "default_security_level": "2",
            "resources-TOTAL_FORMS": "1",
            "resources-INITIAL_FORMS": "1",
            "resources-0-id": str(server.resources.get().pk),
            "resources-0-upstream": str(server.pk),
        },
    )
    server.refresh_from_db()
    assert (server.credentials, server.enabled, server.default_security_level) == ("Bearer staff-set-token", False, 2)


def test_the_circuit_state_is_shown_and_staff_can_reset_it(admin_client):
    server = UpstreamServer.objects.create(name="flaky", url="https://flaky.example/mcp", consecutive_failures=7)
    UpstreamServer.objects.filter(pk=server.pk).update(circuit_opened_at="2099-01-01T00:00:00Z")

    listing = admin_client.get("/admin/tools/upstreamserver/").content.decode()
    assert ">open<" in listing

    admin_client.get(f"/admin/tools/upstreamserver/{server.pk}/reset-circuit/")
    server.refresh_from_db()
    assert (server.circuit_state, server.consecutive_failures) == ("closed", 0)
    assert AuditEvent.objects.filter(action="upstream.circuit_reset").exists()


def test_staff_test_a_tool_from_its_page(admin_client):
    workspace, _members = workspace_with(Role.OWNER)
    whoami = Tool.objects.get(name="whoami")

    form = admin_client.get(f"/admin/tools/tool/{whoami.pk}/test/").content.decode()
    assert "Input schema" in form
    without_workspace = admin_client.post(f"/admin/tools/tool/{whoami.pk}/test/", {"arguments": "{}"})
    assert "choose one to test it as" in without_workspace.content.decode()
    result = admin_client.post(
        f"/admin/tools/tool/{whoami.pk}/test/", {"arguments": "{}", "workspace": str(workspace.pk)}
    ).content.decode()

    assert workspace.name in result
    assert AuditEvent.objects.filter(action="tool.test", workspace=workspace).exists()
    bad = admin_client.post(f"/admin/tools/tool/{whoami.pk}/test/", {"arguments": "[1]"}).content.decode()
    assert "must be a JSON object" in bad
