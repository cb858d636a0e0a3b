"""The MCP endpoint as clients meet it: the ASGI server (settings.ASGI_SERVER) in its own process, on the test database
and the suite's Redis, spoken to with the official SDK clients."""

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from django.db import connection
from mcp.shared.message import SessionMessage
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from billing.models import Plan, Tier
from billing.quotas import billing_account_get
from tests.integration.conftest import AsgiServer, asgi_server_start
from tools import services
from tools.models import Tool, ToolKind

META = {  # the 2026-07-28 envelope of a request
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture(scope="module")
def mcp_server(django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    with django_db_blocker.unblock():
        server = asgi_server_start()
    yield server
    if server.process.poll() is None:
        server.stop()


@dataclass
class Tenant:
    workspace_id: str
    key: str
    other_key: str
    owner: object


def tenant_make(tier: str = Tier.FREE, **plan_limits: object) -> Tenant:
    """A workspace on `tier` (with these plan limits changed) and two keys of its owner."""
    workspace, (owner,) = workspace_with(Role.OWNER)
    account = billing_account_get(workspace_id=workspace.pk)
    account.plan = Plan.objects.get(tier=tier)
    account.save()
    if plan_limits:
        Plan.objects.filter(tier=tier).update(**plan_limits)
    return Tenant(str(workspace.pk), issue_key(owner).secret, issue_key(owner).secret, owner)


def global_tool_add(name: str) -> None:
    """A new global tool, saved through the registry service (so it is announced); from a worker thread."""
    services.tool_save(
        tool=Tool(
            name=name,
            kind=ToolKind.HTTP,
            description="Added while sessions are open",
            input_schema={"type": "object"},
            http_url_template="https://api.example.com/added",
            security_level=1,
        )
    )
    connection.close()


def http_client(key: str | None, **headers: str) -> httpx2.AsyncClient:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))


@asynccontextmanager
async def websocket_transport(url: str, key: str) -> AsyncIterator[tuple[Any, Any]]:
    """A WebSocket transport for the SDK's `Client`: one JSON-RPC message per text frame, subprotocol `mcp`."""
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](32)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](32)
    async with connect(
        url, subprotocols=[Subprotocol("mcp")], additional_headers={"Authorization": f"Bearer {key}"}
    ) as socket:

        async def reader() -> None:
            async for frame in socket:
                message = types.jsonrpc_message_adapter.validate_python(json.loads(frame), by_name=False)
                await read_writer.send(SessionMessage(message))

        async def writer() -> None:
            async for item in write_reader:
                await socket.send(item.message.model_dump_json(by_alias=True, exclude_unset=True))

        async with anyio.create_task_group() as group:
            group.start_soon(reader)
            group.start_soon(writer)
            try:
                yield read_stream, write_stream
            finally:
                group.cancel_scope.cancel()
