"""Every transport, with the official SDK client: Streamable HTTP in the handshake era and in 2026-07-28 mode, the
legacy HTTP+SSE transport, and WebSocket. Each sees the workspace's tools and its calls are metered."""

from typing import Any, cast
from uuid import UUID

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from billing.models import Metric
from billing.quotas import quota_usage
from tests.mcp.conftest import http_client, tenant_make, websocket_transport

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _calls(workspace_id: str) -> int:
    return next(q.used for q in quota_usage(workspace_id=UUID(workspace_id)) if q.metric == Metric.API_CALLS)


async def _use(client: Client) -> tuple[list[str], str]:
    tools = await client.list_tools()
    result = await client.call_tool("whoami", {})
    assert not result.is_error
    return sorted(tool.name for tool in tools.tools), getattr(result.content[0], "text", "")


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_streamable_http_in_both_eras(mcp_server, mode):
    tenant = tenant_make()

    async def session():
        transport = streamable_http_client(mcp_server.url, http_client=http_client(tenant.key))
        async with Client(transport, mode=mode, cache=None) as client:
            return client.protocol_version, await _use(client)

    version, (names, text) = anyio.run(session)

    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert {"whoami", "get_usage", "find_tools"} <= set(names)
    assert "on the Free plan" in text
    assert _calls(tenant.workspace_id) == 1


def test_legacy_sse_transport(mcp_server):
    tenant = tenant_make()

    async def session():
        headers = {"Authorization": f"Bearer {tenant.key}"}
        async with Client(sse_client(f"{mcp_server.base}/sse", headers=headers), mode="legacy", cache=None) as client:
            return await _use(client)

    names, text = anyio.run(session)
    assert "whoami" in names
    assert "on the Free plan" in text
    assert _calls(tenant.workspace_id) == 1


def test_websocket_transport(mcp_server):
    tenant = tenant_make()

    async def session():
        transport = websocket_transport(f"ws://127.0.0.1:{mcp_server.port}/mcp/ws", tenant.key)
        async with Client(cast(Any, transport), mode="legacy", cache=None) as client:
            return await _use(client)

    names, text = anyio.run(session)
    assert "whoami" in names
    assert "on the Free plan" in text


def test_without_a_key_the_answer_is_401_with_the_resource_metadata(mcp_server):
    response = httpx.post(mcp_server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge == f'Bearer resource_metadata="{mcp_server.base}/.well-known/oauth-protected-resource/mcp"'
    metadata = httpx.get(f"{mcp_server.base}/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == mcp_server.url
    assert metadata["bearer_methods_supported"] == ["header"]
    wrong = httpx.post(mcp_server.url, headers={"Authorization": "Bearer tp_live_000000000000_nope"}, json={})
    assert wrong.status_code == 401
    assert "not a Toolport API key" in wrong.json()["message"] or "not valid" in wrong.json()["message"]
