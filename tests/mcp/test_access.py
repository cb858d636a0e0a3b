"""What the endpoint refuses, and how: sessions bound to their key, DNS-rebinding guard, body limit, the plan's rate
and session limits, quota exhaustion mid-session, unknown tools; and registry changes pushed to live sessions."""

from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from billing.models import Tier
from tests.mcp.conftest import global_tool_add, http_client, tenant_make

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ACCEPT = "application/json, text/event-stream"
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}


def _post(mcp_server, key: str | None, body: object, **headers: str) -> httpx.Response:
    headers = {"Accept": ACCEPT, **headers}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(mcp_server.url, json=body, headers=headers, timeout=30)


def _initialize(mcp_server, key: str) -> str:
    response = _post(mcp_server, key, INITIALIZE)
    assert response.status_code == 200, response.text
    return response.headers["Mcp-Session-Id"]


def test_a_session_belongs_to_the_key_that_opened_it(mcp_server):
    tenant = tenant_make()
    session = _initialize(mcp_server, tenant.key)
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}

    assert _post(mcp_server, tenant.key, ping, **{"Mcp-Session-Id": session}).json()["result"] == {}
    stolen = _post(mcp_server, tenant.other_key, ping, **{"Mcp-Session-Id": session})
    assert stolen.status_code == 404
    assert _post(mcp_server, tenant.key, ping).status_code == 400  # no session id at all

    closed = httpx.delete(mcp_server.url, headers={"Authorization": f"Bearer {tenant.key}", "Mcp-Session-Id": session})
    assert closed.status_code == 200
    assert _post(mcp_server, tenant.key, ping, **{"Mcp-Session-Id": session}).status_code == 404


def test_foreign_hosts_and_origins_are_refused(mcp_server):
    tenant = tenant_make()
    assert _post(mcp_server, tenant.key, INITIALIZE, Host="evil.example.com").status_code == 403
    assert _post(mcp_server, tenant.key, INITIALIZE, Origin="http://evil.example.com").status_code == 403
    assert _post(mcp_server, tenant.key, INITIALIZE, Origin=f"http://127.0.0.1:{mcp_server.port}").status_code == 200


def test_a_body_over_one_mebibyte_is_refused_with_413(mcp_server):
    tenant = tenant_make()
    huge = {**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * (1024 * 1024 + 1)}}
    assert _post(mcp_server, tenant.key, huge).status_code == 413


def test_the_plans_rate_per_key_is_enforced_with_retry_after(mcp_server):
    tenant = tenant_make(Tier.FREE, requests_per_minute_per_key=3)
    statuses = [_post(mcp_server, tenant.key, INITIALIZE).status_code for _ in range(3)]
    refused = _post(mcp_server, tenant.key, INITIALIZE)
    if statuses != [200, 200, 200]:  # the minute turned over between requests: try once more
        statuses = [_post(mcp_server, tenant.key, INITIALIZE).status_code for _ in range(3)]
        refused = _post(mcp_server, tenant.key, INITIALIZE)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "requests this minute" in refused.json()["message"]


def test_a_key_at_its_session_cap_evicts_its_least_recently_used_session(mcp_server):
    tenant = tenant_make(Tier.FREE, max_concurrent_sessions=2)
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    first, second = _initialize(mcp_server, tenant.key), _initialize(mcp_server, tenant.key)
    assert _post(mcp_server, tenant.key, ping, **{"Mcp-Session-Id": first}).status_code == 200  # first: used last

    third = _initialize(mcp_server, tenant.key)  # a laptop that lost its sessions is not locked out

    assert _post(mcp_server, tenant.key, ping, **{"Mcp-Session-Id": second}).status_code == 404  # evicted
    for kept in (first, third):
        assert _post(mcp_server, tenant.key, ping, **{"Mcp-Session-Id": kept}).status_code == 200


def test_a_quota_spent_mid_session_is_an_error_naming_limit_reset_and_upgrade(mcp_server):
    tenant = tenant_make(Tier.FREE, api_calls_per_month=1)

    async def session():
        async with Client(
            streamable_http_client(mcp_server.url, http_client=http_client(tenant.key)), mode="legacy", cache=None
        ) as client:
            first = await client.call_tool("whoami", {})
            with pytest.raises(MCPError) as refused:
                await client.call_tool("whoami", {})
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("no_such_tool", {})
            return first, refused.value.error, unknown.value.error

    first, refused, unknown = anyio.run(session)
    assert not first.is_error
    assert refused.code == -32029
    assert "1 of its 1 API calls" in refused.message
    assert "resets on" in refused.message
    assert f"/console/w/{tenant.workspace_id}/billing/" in refused.message
    assert refused.data["metric"] == "api_calls"
    assert unknown.code == types.INVALID_PARAMS
    assert "no_such_tool" in unknown.message


def test_a_registry_change_reaches_live_sessions_as_list_changed(mcp_server):
    tenant = tenant_make()
    received: list[object] = []

    async def handler(message) -> None:
        if isinstance(message, types.ServerNotification):
            received.append(message)

    async def session():
        transport = streamable_http_client(mcp_server.url, http_client=http_client(tenant.key))
        async with Client(transport, mode="legacy", cache=None, message_handler=handler) as client:
            await anyio.sleep(0.5)  # the client opens its notification stream (GET) after initialize
            await anyio.to_thread.run_sync(global_tool_add, "fresh_tool")
            with anyio.fail_after(10):
                while not received:
                    await anyio.sleep(0.05)
            return [tool.name for tool in (await client.list_tools()).tools]

    names = anyio.run(session)
    assert isinstance(received[0], types.ToolListChangedNotification)
    assert "fresh_tool" in names
