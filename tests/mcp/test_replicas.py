"""Two server processes sharing PostgreSQL and Redis behave as one endpoint (one runs daphne, the other uvicorn: the
product supports both), and a process with sessions open stops promptly on SIGTERM under either server."""

import time
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.conftest import asgi_server_start
from tests.mcp.conftest import global_tool_add, tenant_make

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def two_replicas(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        first, second = asgi_server_start("daphne"), asgi_server_start("uvicorn")
    yield first, second
    for server in (first, second):
        if server.process.poll() is None:
            server.stop()


def _to_other_replica(port: int, *, skip: int = 0):
    """An httpx2 request hook sending POSTs to another port (after the first `skip` of them)."""
    seen = {"posts": 0}

    async def hook(request: httpx2.Request) -> None:
        if request.method == "POST":
            seen["posts"] += 1
            if seen["posts"] > skip:
                request.url = request.url.copy_with(port=port)
                request.headers["Host"] = f"127.0.0.1:{port}"

    return hook


def test_a_legacy_sse_stream_on_one_replica_answers_posts_sent_to_the_other(two_replicas):
    first, second = two_replicas
    tenant = tenant_make()

    def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=headers, timeout=timeout, auth=auth, event_hooks={"request": [_to_other_replica(second.port)]}
        )

    async def session():
        transport = sse_client(
            f"{first.base}/sse", headers={"Authorization": f"Bearer {tenant.key}"}, httpx_client_factory=factory
        )
        async with Client(transport, mode="legacy", cache=None) as client:
            tools = await client.list_tools()
            result = await client.call_tool("whoami", {})
            return [tool.name for tool in tools.tools], result

    names, result = anyio.run(session)
    assert "whoami" in names
    assert not result.is_error


def test_a_streamable_session_opened_on_one_replica_goes_on_on_the_other(two_replicas):
    first, second = two_replicas
    tenant = tenant_make()
    received: list[object] = []

    async def handler(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            received.append(message)

    async def session():
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {tenant.key}"},
            timeout=httpx2.Timeout(30, read=60),
            event_hooks={"request": [_to_other_replica(second.port, skip=1)]},  # initialize on the first replica
        )
        transport = streamable_http_client(first.url, http_client=http)
        async with Client(transport, mode="legacy", cache=None, message_handler=handler) as client:
            result = await client.call_tool("whoami", {})  # served by the second replica
            await anyio.sleep(0.5)
            await anyio.to_thread.run_sync(global_tool_add, "replicated")
            with anyio.fail_after(10):
                while not received:
                    await anyio.sleep(0.05)
            return result

    result = anyio.run(session)
    assert not result.is_error
    assert received  # the GET stream (on the first replica) got the change made here


@pytest.mark.parametrize("asgi_server", ["daphne", "uvicorn"])
def test_sigterm_with_open_sessions_exits_within_ten_seconds(asgi_server):
    server = asgi_server_start(asgi_server)
    tenant = tenant_make()
    headers = {"Authorization": f"Bearer {tenant.key}"}
    stream = httpx.Client(timeout=30)
    with stream.stream("GET", f"{server.base}/sse", headers=headers) as legacy:
        assert legacy.status_code == 200
        first_event = next(legacy.iter_lines())
        assert first_event == "event: endpoint"
        elapsed = server.stop(timeout=20)
    assert elapsed < 10
    time.sleep(0.1)
