"""The usage dashboard in a real browser after real MCP calls: an MCP client (the official SDK) calls tools on the
product's ASGI server; the owner opens the console and sees the quota bar move, the charts fed with those calls, the
top tools and the recent calls, filters them, and exports them. A screenshot is saved with the test artifacts."""

import concurrent.futures
import contextlib
import os
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from accounts.models import Role
from accounts.tests.factories import PASSWORD, issue_key, workspace_with
from core.embedded.paths import BASE_DIR
from monitoring.models import UsageEvent
from tests.integration.conftest import asgi_server_start
from tests.mcp.conftest import http_client

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(os.environ.get("TOOLPORT_TEST_ARTIFACTS", BASE_DIR / "var" / "test-artifacts"))


def test_the_dashboard_shows_real_mcp_calls(page, live_server):
    workspace, (owner,) = workspace_with(Role.OWNER)
    key = issue_key(owner, name="laptop").secret
    server = asgi_server_start(USAGE_EVENTS_FLUSH_SECONDS="0.2")
    try:

        async def calls() -> None:
            transport = streamable_http_client(server.url, http_client=http_client(key))
            async with Client(transport, mode="2026-07-28", cache=None) as client:
                for number in range(6):
                    await client.call_tool("echo", {"text": f"hello {number}"})
                await client.call_tool("find_tools", {"query": "echo"})
                await client.call_tool("echo", {"wrong": "argument"})  # a tool error
                with contextlib.suppress(MCPError):
                    await client.call_tool("no_such_tool", {})  # denied

        # Playwright's sync API holds an event loop on this thread: the MCP client runs on its own.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(anyio.run, calls).result(timeout=60)
        deadline = time.monotonic() + 15
        while UsageEvent.objects.filter(workspace=workspace).count() < 9 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.stop()
    assert UsageEvent.objects.filter(workspace=workspace).count() == 9

    page.goto("/accounts/login/")
    page.get_by_label("Email:").fill(owner.user.email)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Dashboard").wait_for()

    page.locator("#usage[data-charts-loaded=true]").wait_for()
    assert page.locator("#usage").get_attribute("data-calls-total") == "9"
    assert page.evaluate("Chart.getChart('chart-calls').data.datasets.map(d => d.label)") == [
        "echo",
        "find_tools",
        "no_such_tool",
    ]
    assert page.evaluate("Chart.getChart('chart-calls').data.datasets[0].data.reduce((a, b) => a + b, 0)") == 7
    p95 = page.evaluate("Chart.getChart('chart-latency').data.datasets[1].data.filter(v => v !== null)")
    assert len(p95) == 1
    assert p95[0] > 0
    page.locator("#quota-api_calls").wait_for()
    assert "7 of" in page.locator("#quota-api_calls").inner_text()  # refused arguments and tools take no quota
    page.locator("#top-tools").wait_for()
    assert "echo" in page.locator("#top-tools").inner_text()
    assert "laptop" in page.locator("#key-usage").inner_text()
    page.locator("#recent-calls").wait_for()
    assert page.locator("#recent-calls tbody tr").count() == 9

    page.locator("#calls-filter select[name=status]").select_option("tool_error")
    page.locator("#recent-calls tbody tr").first.wait_for()
    page.wait_for_function("document.querySelectorAll('#recent-calls tbody tr').length === 1")
    assert "tool_error" in page.locator("#recent-calls").inner_text()

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.count("\n") == 2  # the header and the one tool error
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#calls-filter select[name=status]").select_option("")
    page.wait_for_function("document.querySelectorAll('#recent-calls tbody tr').length === 9")
    page.screenshot(path=str(ARTIFACTS / "usage-dashboard.png"), full_page=True)
