"""A client that cancels a call stops the work behind it, all the way to an upstream MCP server."""

import time

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.conftest import asgi_server_start
from tests.mcp.conftest import http_client, tenant_make
from tools.models import UpstreamServer
from tools.tests.conftest import UpstreamProcess, free_port
from tools.upstream import upstream_import

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def upstream_and_daphne(settings):
    upstream = UpstreamProcess(free_port()).start()
    allowed = f"127.0.0.1:{upstream.port}"
    settings.OUTBOUND_ALLOWED_HOSTS = [allowed]
    server = asgi_server_start(OUTBOUND_ALLOWED_HOSTS=allowed)
    yield upstream, server
    server.stop()
    upstream.stop()


def test_a_cancelled_call_cancels_the_upstream_tool_and_the_session_goes_on(upstream_and_daphne):
    upstream, server = upstream_and_daphne
    tenant = tenant_make()
    upstream_import(server=UpstreamServer.objects.create(name="fixture", url=upstream.url, default_security_level=1))

    async def session():
        transport = streamable_http_client(server.url, http_client=http_client(tenant.key))
        async with Client(transport, mode="legacy", cache=None) as client:
            started = time.monotonic()
            with anyio.move_on_after(1.5):
                await client.call_tool("fixture__slow", {"seconds": 30})
            waited = time.monotonic() - started
            after = await client.call_tool("fixture__add", {"a": 2, "b": 2})
            return waited, after

    waited, after = anyio.run(session)
    assert waited < 5
    assert getattr(after.content[0], "text", "") == "4"
    deadline = time.monotonic() + 10
    while not upstream.seen()["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert upstream.seen()["cancelled"] == ["slow(30.0)"]
