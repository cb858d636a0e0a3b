"""The one pipeline, on what users notice: every message of every transport is authenticated from memory and
admitted (rate, quota, the access epoch), so a revoked key stops working on open sockets too; WebSocket clients
that cannot set headers connect with the key in the URL, which no log line shows; a key at its session cap evicts
its oldest session instead of being locked out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from accounts.api_keys import api_key_authenticate, api_key_revoke
from accounts.models import ApiKey, Membership
from billing.models import Metric, Plan, Tier, UsageEntry
from billing.quotas import quota_policy_forget, quota_usage, usage_flush
from tests.integration.conftest import asgi_server_start
from tests.mcp.conftest import META, tenant_make
from tools import services
from tools.mcp_server.pipeline import auth
from tools.mcp_server.transports.streamable import streamable_http_app
from tools.models import Tool

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}


def _call(name: str, arguments: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "_meta": META}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def _post(key: str, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """One 2026-07-28 POST /mcp through the ASGI app, in this process."""
    sent = {
        "host": "localhost",
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": message["method"],
        "mcp-name": message["params"]["name"],
    }
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "scheme": "http",
        "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, value in sent.items()],
    }
    incoming = [{"type": "http.request", "body": json.dumps(message).encode(), "more_body": False}]
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            answer["status"] = event["status"]
            answer["headers"] = {name.decode(): value.decode() for name, value in event["headers"]}
        else:
            answer["body"] += event.get("body", b"")

    await streamable_http_app(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"]


def post(key: str, message: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    status, headers, body = anyio.run(_post, key, message)
    return status, json.loads(body) if body else None, headers


def _used(workspace_id: str, metric: str = Metric.API_CALLS) -> int:
    return next(q.used for q in quota_usage(workspace_id=UUID(workspace_id)) if q.metric == metric)


def _clear_of_the_minute_boundary() -> None:
    """Requests per minute are counted per clock minute: start a counting test well inside one."""
    if time.time() % 60 > 50:
        time.sleep(60 - time.time() % 60 + 0.1)


def _revoke(tenant: Any, raw_key: str) -> None:
    owner = Membership.objects.get(pk=tenant.owner.pk)
    api_key_revoke(actor=owner, key=ApiKey.objects.get(pk=api_key_authenticate(raw_key=raw_key).id))


@pytest.fixture(autouse=True)
def _fresh_caches():
    auth.cache_reset()
    yield
    auth.cache_reset()


# --- in this process ---------------------------------------------------------------------------------------------


def test_a_stateless_call_is_answered_metered_and_served_from_memory_after_the_first():
    tenant = tenant_make()
    status, answer, headers = post(tenant.key, _call("echo", {"text": "ünïcode ✓"}, request_id="r-7"))
    assert (status, answer["id"], headers["content-type"]) == (200, "r-7", "application/json")
    result = answer["result"]
    assert result["content"] == [{"type": "text", "text": "ünïcode ✓"}]
    assert (result["isError"], result["resultType"]) == (False, "complete")
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "toolport"
    loads = auth._cache.loads
    for _ in range(5):
        assert post(tenant.key, _call("echo", {"text": "again"}))[0] == 200
    assert auth._cache.loads == loads  # the key, its plan and its tools came from memory
    assert _used(tenant.workspace_id) == 6


def test_bad_calls_get_clear_answers_and_cost_no_quota():
    tenant = tenant_make()
    status, answer, _ = post(tenant.key, _call("echo", {"text": 5}))  # invalid arguments: a tool error
    assert status == 200
    assert answer["result"]["isError"] is True
    assert "text" in answer["result"]["content"][0]["text"]
    status, answer, _ = post(tenant.key, _call("no_such_tool", {}))
    assert (status, answer["error"]["code"]) == (400, -32602)
    assert "no_such_tool" in answer["error"]["message"]
    assert _used(tenant.workspace_id) == 0
    status, answer, headers = post("tp_live_000000000000_" + "x" * 43, _call("echo", {"text": "x"}))
    assert status == 401
    assert "resource_metadata" in headers["www-authenticate"]


def test_revocation_a_disabled_tool_and_a_plan_change_apply_at_once():
    tenant = tenant_make()
    assert post(tenant.key, _call("echo", {"text": "a"}))[0] == 200  # cached in this process from now on
    tool = Tool.objects.get(name="echo", workspace__isnull=True)
    tool.enabled = False
    services.tool_save(tool=tool)
    try:
        status, answer, _ = post(tenant.key, _call("echo", {"text": "b"}))
        assert (status, answer["error"]["code"]) == (400, -32602)
    finally:
        tool.enabled = True
        services.tool_save(tool=tool)
    assert post(tenant.key, _call("echo", {"text": "c"}))[0] == 200

    _clear_of_the_minute_boundary()
    assert post(tenant.other_key, _call("echo", {"text": "d"}))[0] == 200
    Plan.objects.filter(tier=Tier.FREE).update(requests_per_minute_per_key=3)
    quota_policy_forget(workspace_id=UUID(tenant.workspace_id))  # what a plan change does after its commit
    answers = [post(tenant.other_key, _call("echo", {"text": "e"})) for _ in range(3)]
    assert [status for status, _answer, _headers in answers] == [200, 200, 429]
    _status, body, headers = answers[-1]
    assert body["code"] == "rate_limited"
    assert 1 <= int(headers["retry-after"]) <= 60

    _revoke(tenant, tenant.key)
    status, body, _ = post(tenant.key, _call("echo", {"text": "f"}))
    assert status == 401
    assert "revoked" in body["message"]


def test_a_spent_quota_names_the_limit_and_takes_nothing_more():
    tenant = tenant_make(Tier.STARTER, api_calls_per_month=2, ai_operations_per_month=10)
    tool = Tool.objects.get(name="echo", workspace__isnull=True)
    tool.ai_operation_cost = 3
    services.tool_save(tool=tool)
    try:
        assert [post(tenant.key, _call("echo", {"text": "a"}))[0] for _ in range(2)] == [200, 200]
        status, body, _ = post(tenant.key, _call("echo", {"text": "a"}))
    finally:
        tool.ai_operation_cost = 0
        services.tool_save(tool=tool)
    assert status == 200
    assert body["error"]["code"] == -32029
    assert body["error"]["data"]["metric"] == "api_calls"
    assert body["error"]["data"]["retryAfter"] >= 1
    assert "upgrade" in body["error"]["message"].lower()
    assert (_used(tenant.workspace_id), _used(tenant.workspace_id, Metric.AI_OPERATIONS)) == (2, 6)
    usage_flush()
    ledger = UsageEntry.objects.filter(workspace_id=tenant.workspace_id)
    assert sum(entry.amount for entry in ledger if entry.metric == Metric.API_CALLS) == 2
    assert sum(entry.amount for entry in ledger if entry.metric == Metric.AI_OPERATIONS) == 6


# --- WebSocket, a real server ------------------------------------------------------------------------------------


async def _ws_open(url: str, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    socket = await connect(url, subprotocols=[Subprotocol("mcp")], additional_headers=headers)
    await socket.send(json.dumps(INITIALIZE))
    assert "result" in json.loads(await socket.recv())
    await socket.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    return socket


async def _ws_call(socket: Any, request_id: int, name: str = "whoami") -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": {}}}
    await socket.send(json.dumps(message))
    while True:
        answer = json.loads(await socket.recv())
        if answer.get("id") == request_id:
            return answer


def ws_url(server: Any, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/mcp/ws{query}"


def test_a_key_revoked_while_its_websocket_is_open_is_refused_on_the_next_frame(mcp_server):
    tenant = tenant_make()

    async def scenario() -> tuple[dict[str, Any], int | None]:
        socket = await _ws_open(ws_url(mcp_server), tenant.key)
        before = await _ws_call(socket, 1)
        await anyio.to_thread.run_sync(_revoke, tenant, tenant.key)
        await socket.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami"}}))
        answered = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                answered.append(json.loads(await socket.recv()))
        assert all(answer.get("id") != 2 for answer in answered), answered  # never answered: the socket closed
        return before, socket.close_code

    before, code = anyio.run(scenario)
    assert "result" in before
    assert code == 4401


def test_websocket_frames_count_against_the_keys_rate(mcp_server):
    tenant = tenant_make(Tier.FREE, requests_per_minute_per_key=4)
    _clear_of_the_minute_boundary()

    async def scenario() -> list[dict[str, Any]]:
        socket = await _ws_open(ws_url(mcp_server), tenant.key)  # connect, initialize, initialized: 3 messages
        answers = [await _ws_call(socket, number) for number in (1, 2)]
        await socket.close()
        return answers

    first, refused = anyio.run(scenario)
    assert "result" in first
    assert refused["error"]["data"]["code"] == "rate_limited"
    assert 1 <= refused["error"]["data"]["retryAfter"] <= 60


@pytest.mark.parametrize("asgi_server", ["uvicorn", "daphne"])
def test_a_websocket_client_passes_its_key_in_the_url_and_no_log_line_shows_it(asgi_server, tmp_path: Path):
    tenant = tenant_make()
    log = tmp_path / "server.log"
    server = asgi_server_start(asgi_server, output=log, LOG_LEVEL="DEBUG")
    try:

        async def scenario() -> tuple[dict[str, Any], int | None]:
            socket = await _ws_open(ws_url(server, f"?api_key={tenant.key}"))
            answer = await _ws_call(socket, 1)
            await socket.close()
            refused = await connect(ws_url(server, "?api_key=tp_live_wrong"), subprotocols=[Subprotocol("mcp")])
            with pytest.raises(ConnectionClosed):
                await refused.recv()
            return answer, refused.close_code

        answer, refused_code = anyio.run(scenario)
    finally:
        server.stop()
    assert "on the Free plan" in answer["result"]["content"][0]["text"]
    assert refused_code == 4401
    written = log.read_text()
    assert "/mcp/ws" in written  # the server did log the connections...
    assert tenant.key not in written  # ...never the key
    assert tenant.key.split("_")[-1] not in written


def test_a_websocket_evicted_at_the_session_cap_is_told_and_closed(mcp_server):
    tenant = tenant_make(Tier.FREE, max_concurrent_sessions=1)

    async def scenario() -> tuple[int | None, dict[str, Any]]:
        old = await _ws_open(ws_url(mcp_server), tenant.key)
        new = await _ws_open(ws_url(mcp_server), tenant.key)
        with pytest.raises(ConnectionClosed):
            await old.recv()
        answer = await _ws_call(new, 1)
        await new.close()
        return old.close_code, answer

    code, answer = anyio.run(scenario)
    assert code == 4429
    assert "result" in answer


def test_a_call_refused_before_its_tool_runs_still_counts_and_a_revoked_key_hears_401():
    tenant = tenant_make(Tier.FREE, requests_per_minute_per_key=2)
    _clear_of_the_minute_boundary()
    malformed = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": 5, "_meta": META},
    }
    statuses = [post(tenant.key, malformed)[0] for _ in range(3)]
    assert statuses == [400, 400, 429]  # invalid params are answered, and counted against the rate like any call

    _revoke(tenant, tenant.key)  # the key is in this process's cache: its next message finds the epoch moved
    status, body, _ = post(tenant.key, malformed)
    assert status == 401
    assert "revoked" in body["message"]
