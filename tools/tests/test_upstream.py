"""Federation: a real MCP server (the official SDK's, in its own process) imported and called through Toolport."""

import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from billing.models import Metric
from billing.quotas import quota_usage
from monitoring.models import AuditEvent
from tools.executors import tool_call, tool_call_async
from tools.models import Prompt, Tool, ToolKind, UpstreamResource, UpstreamServer, UpstreamTransport
from tools.tests.conftest import UpstreamProcess, free_port
from tools.upstream import (
    UpstreamUnavailable,
    circuit_admit,
    upstream_import,
    upstream_pool_close,
    upstream_prompt_get,
    upstream_resource_read,
)

pytestmark = pytest.mark.django_db


def _server(url: str, **fields) -> UpstreamServer:
    fields.setdefault("default_security_level", 1)
    return UpstreamServer.objects.create(name="fixture", url=url, **fields)


def test_import_mirrors_tools_prompts_and_resources_under_the_server_name(upstream):
    server = _server(upstream.url)
    report = upstream_import(server=server)

    assert sorted(report.created) == ["fixture__add", "fixture__explode", "fixture__slow"]
    add = Tool.objects.get(name="fixture__add")
    assert add.kind == ToolKind.UPSTREAM
    assert add.upstream_tool_name == "add"
    assert add.description == "Add two integers."
    assert add.input_schema["required"] == ["a", "b"]
    assert add.output_schema is not None
    assert add.output_schema["properties"]["result"]["type"] == "integer"
    prompt = Prompt.objects.get(name="fixture__greet")
    assert prompt.arguments == [{"name": "name", "description": "", "required": True}]
    assert UpstreamResource.objects.get(upstream=server).uri == "note://readme"
    server.refresh_from_db()
    assert server.last_sync_at is not None
    assert AuditEvent.objects.filter(action="upstream.sync").exists()


def test_a_refresh_keeps_staff_choices_and_drops_what_the_server_no_longer_lists(upstream):
    server = _server(upstream.url)
    upstream_import(server=server)
    Tool.objects.filter(name="fixture__add").update(security_level=3, enabled=False, timeout_seconds=5)
    Tool.objects.create(
        name="fixture__gone", kind=ToolKind.UPSTREAM, upstream=server, upstream_tool_name="gone", description="x"
    )

    report = upstream_import(server=server)

    assert report.removed == ["fixture__gone"]
    assert "fixture__add" in report.updated
    add = Tool.objects.get(name="fixture__add")
    assert (add.security_level, add.enabled, add.timeout_seconds) == (3, False, 5)


def test_an_imported_tool_is_called_through_the_server_and_metered(upstream):
    workspace, _members = workspace_with(Role.OWNER)
    upstream_import(server=_server(upstream.url))

    result = tool_call(workspace_id=workspace.pk, name="fixture__add", arguments={"a": 2, "b": 3})
    failed = tool_call(workspace_id=workspace.pk, name="fixture__explode", arguments={})

    assert (result.text, result.structured, result.is_error) == ("5", {"result": 5}, False)
    assert failed.is_error
    assert "explode" in failed.text
    used = {quota.metric: quota.used for quota in quota_usage(workspace_id=workspace.pk)}
    assert used[Metric.API_CALLS] == 2


def test_prompts_and_resources_are_rendered_and_read_by_the_server(upstream):
    server = _server(upstream.url)
    upstream_import(server=server)
    prompt = Prompt.objects.select_related("upstream").get(name="fixture__greet")
    resource = UpstreamResource.objects.select_related("upstream").get(upstream=server)

    rendered = async_to_sync(upstream_prompt_get)(prompt, {"name": "Ada"})
    contents = async_to_sync(upstream_resource_read)(resource)

    assert rendered.messages[0].content.text == "Please greet Ada warmly."
    assert contents.contents[0].text == "Hello from upstream."


def test_only_the_servers_own_credential_goes_upstream_never_the_callers_key(upstream):
    workspace, members = workspace_with(Role.OWNER)
    issued = issue_key(members[0])
    upstream_import(server=_server(upstream.url, credentials="Bearer upstream-only-token"))
    before = len(upstream.seen()["authorization"])

    tool_call(workspace_id=workspace.pk, name="fixture__add", arguments={"a": 1, "b": 1}, api_key=issued.key)

    sent = upstream.seen()["authorization"][before:]
    assert sent
    assert set(sent) == {"Bearer upstream-only-token"}
    assert not any(issued.secret in header for header in sent)


def test_a_private_address_is_refused_without_the_allow_list(upstream, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    server = _server(upstream.url)
    with pytest.raises(UpstreamUnavailable, match="loopback address"):
        upstream_import(server=server)
    server.refresh_from_db()
    assert "loopback address" in server.last_error


def test_a_tool_slower_than_its_timeout_is_an_error_result(upstream):
    workspace, _members = workspace_with(Role.OWNER)
    upstream_import(server=_server(upstream.url))
    Tool.objects.filter(name="fixture__slow").update(timeout_seconds=1)

    result = tool_call(workspace_id=workspace.pk, name="fixture__slow", arguments={"seconds": 5})

    assert result.is_error
    assert "within 1 s" in result.text


def test_the_circuit_opens_after_repeated_failures_and_a_half_open_trial_closes_it(upstream, settings):
    settings.UPSTREAM_CIRCUIT_FAILURES = 2
    settings.UPSTREAM_CIRCUIT_RESET_SECONDS = 1
    dead_port = free_port()
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{upstream.port}", f"127.0.0.1:{dead_port}"]
    workspace, _members = workspace_with(Role.OWNER)
    server = _server(upstream.url)
    upstream_import(server=server)
    UpstreamServer.objects.filter(pk=server.pk).update(url=f"http://127.0.0.1:{dead_port}/mcp")

    def call():
        return tool_call(workspace_id=workspace.pk, name="fixture__add", arguments={"a": 1, "b": 2})

    for _ in range(2):
        assert "could not be used" in call().text
    server.refresh_from_db()
    assert (server.circuit_state, server.consecutive_failures) == ("open", 2)

    refused = call()
    assert refused.is_error
    assert "stopped calling it" in refused.text
    server.refresh_from_db()
    assert server.consecutive_failures == 2  # refused at once: no connection was attempted

    time.sleep(1.1)
    server.refresh_from_db()
    assert server.circuit_state == "half-open"
    assert "could not be used" in call().text  # the trial fails: open again
    server.refresh_from_db()
    assert server.circuit_state == "open"

    time.sleep(1.1)
    UpstreamServer.objects.filter(pk=server.pk).update(url=upstream.url)
    assert call().text == "3"  # the trial succeeds: closed
    server.refresh_from_db()
    assert (server.circuit_state, server.consecutive_failures, server.last_error) == ("closed", 0, "")


def test_half_open_lets_exactly_one_trial_through(settings):
    settings.UPSTREAM_CIRCUIT_RESET_SECONDS = 30
    server = _server("http://example.invalid/mcp")
    UpstreamServer.objects.filter(pk=server.pk).update(
        circuit_opened_at=timezone.now() - timedelta(seconds=31), consecutive_failures=5
    )
    assert circuit_admit(server.pk) == 0
    assert circuit_admit(server.pk) == 30


def test_long_lived_callers_reuse_one_connection(upstream):
    workspace, _members = workspace_with(Role.OWNER)
    upstream_import(server=_server(upstream.url))
    before = len(upstream.seen()["peers"])

    async def three_calls():
        try:
            return [
                await tool_call_async(
                    workspace_id=workspace.pk, name="fixture__add", arguments={"a": n, "b": n}, reuse_connections=True
                )
                for n in range(3)
            ]
        finally:
            await upstream_pool_close()

    results = async_to_sync(three_calls)()

    assert [result.text for result in results] == ["0", "2", "4"]
    peers = upstream.seen()["peers"][before:]
    assert len(peers) >= 3
    assert len(set(peers)) == 1


def test_the_legacy_sse_transport_is_imported_and_called(settings):
    sse = UpstreamProcess(free_port(), transport="sse").start()
    try:
        settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{sse.port}"]
        workspace, _members = workspace_with(Role.OWNER)
        server = _server(sse.url, transport=UpstreamTransport.SSE)
        assert "fixture__add" in upstream_import(server=server).created
        assert tool_call(workspace_id=workspace.pk, name="fixture__add", arguments={"a": 4, "b": 5}).text == "9"
    finally:
        sse.stop()


def test_prompts_are_listed_and_rendered_over_rest_local_and_upstream(upstream):
    from rest_framework.test import APIClient

    workspace, members = workspace_with(Role.OWNER)
    upstream_import(server=_server(upstream.url))
    Prompt.objects.create(
        name="summarise",
        description="Summarise a text",
        arguments=[{"name": "text", "description": "", "required": True}],
        messages=[{"role": "user", "text": "Summarise: {text}"}],
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key(members[0]).secret}")
    base = f"/api/v1/workspaces/{workspace.pk}/prompts/"

    names = [prompt["name"] for prompt in api.get(base).json()]
    local = api.post(f"{base}summarise/render/", {"arguments": {"text": "hi"}}, format="json").json()
    remote = api.post(f"{base}fixture__greet/render/", {"arguments": {"name": "Ada"}}, format="json").json()
    missing = api.post(f"{base}summarise/render/", {"arguments": {}}, format="json")
    unknown = api.post(f"{base}nope/render/", {}, format="json")

    assert names == ["fixture__greet", "summarise"]
    assert local["messages"] == [{"role": "user", "content": {"type": "text", "text": "Summarise: hi"}}]
    assert remote["messages"][0]["content"]["text"] == "Please greet Ada warmly."
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid_prompt_arguments")
    assert unknown.status_code == 404


def test_beat_refreshes_servers_whose_last_sync_is_old_and_reports_failures(upstream, settings):
    from tools.tasks import upstream_refresh_task

    settings.UPSTREAM_REFRESH_SECONDS = 300
    stale = _server(upstream.url)
    UpstreamServer.objects.filter(pk=stale.pk).update(last_sync_at=timezone.now() - timedelta(seconds=301))
    fresh = UpstreamServer.objects.create(name="fresh", url=upstream.url, last_sync_at=timezone.now())
    broken = UpstreamServer.objects.create(name="broken", url=f"http://127.0.0.1:{free_port()}/mcp")
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{upstream.port}", broken.url.split("/")[2]]

    outcomes = upstream_refresh_task()

    assert set(outcomes) == {"fixture", "broken"}  # "fresh" synced a moment ago
    assert outcomes["fixture"].startswith("Tools: 3 new")
    assert "could not be used" in outcomes["broken"]
    assert Tool.objects.filter(upstream=stale).count() == 3
    assert not Tool.objects.filter(upstream=fresh).exists()
