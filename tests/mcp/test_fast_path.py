"""The fast path for stateless `tools/call` (tools.mcp_server.fastpath) answers exactly as the full SDK path does,
and revocation, registry and plan changes reach it at once (the access epoch).

Both paths run in this process against the suite's PostgreSQL and Redis: the ASGI app is called directly, once with
the fast path on and once with it off, and the answers are compared byte for byte."""

import asyncio
import json
import time
from typing import Any
from uuid import UUID

import anyio
import pytest
import redis
from django.conf import settings
from django.test import override_settings

from accounts.api_keys import api_key_authenticate, api_key_revoke
from accounts.models import ApiKey, Membership
from billing.models import Metric, Plan, Tier, UsageEntry
from billing.quotas import quota_policy_forget, quota_usage, usage_flush
from tests.mcp.conftest import tenant_make
from tools import services
from tools.mcp_server import fastpath
from tools.mcp_server.streamable import streamable_http_app
from tools.models import Tool

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def _call(name: str, arguments: dict[str, Any] | None = None, request_id: Any = 1, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "_meta": {**META, **extra.pop("meta", {})}}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params, **extra}


def _headers(key: str, message: dict[str, Any]) -> dict[str, str]:
    """What a 2026-07-28 client sends with a request (lowercase, as ASGI hands headers over)."""
    return {
        "host": "localhost",
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": message["method"],
        "mcp-name": message["params"]["name"],
    }


async def _post(key: str, message: dict[str, Any], **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One POST /mcp through the ASGI app, as a 2026-07-28 client sends it."""
    sent = {**_headers(key, message), **headers}
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "scheme": "http",
        "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, value in sent.items()],
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 50000),
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


def post(key: str, message: dict[str, Any], *, fast: bool = True, **headers: str) -> tuple[int, Any, dict[str, str]]:
    with override_settings(MCP_FAST_PATH=fast):
        status, answer_headers, body = anyio.run(lambda: _post(key, message, **headers))
    return status, json.loads(body) if body else None, answer_headers


def served_fast(key: str, message: dict[str, Any]) -> bool:
    """Whether the fast path itself answers this request (False: it declines and the full path would)."""

    async def attempt() -> bool:
        headers = _headers(key, message)
        scope = {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}

        async def send(event: dict[str, Any]) -> None:
            return None

        return await fastpath.fast_tool_call(scope, headers, json.dumps(message).encode(), send)

    with override_settings(MCP_FAST_PATH=True):
        return anyio.run(attempt)


def _used(workspace_id: str, metric: str = Metric.API_CALLS) -> int:
    return next(q.used for q in quota_usage(workspace_id=UUID(workspace_id)) if q.metric == metric)


def _clear_of_the_minute_boundary() -> None:
    """Requests per minute are counted per clock minute: start a counting test well inside one."""
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


@pytest.fixture(autouse=True)
def _fresh_caches():
    fastpath._cache_reset()
    yield
    fastpath._cache_reset()


def test_a_builtin_call_takes_the_fast_path_and_answers_as_the_sdk_does():
    tenant = tenant_make()
    cases = [
        _call("echo", {"text": "hello"}),
        _call("echo", {"text": "ünïcode ✓"}, request_id="req-7"),
        _call("find_tools", {"query": "usage quota"}),
    ]
    for message in cases:
        assert served_fast(tenant.key, message)
        fast = post(tenant.key, message)
        full = post(tenant.key, message, fast=False)
        assert fast[:2] == full[:2], message
        assert fast[2]["content-type"] == full[2]["content-type"] == "application/json"
    status, answer, _headers = post(tenant.key, cases[0])
    assert (status, answer["id"], answer["result"]["content"][0]["text"]) == (200, 1, "hello")
    # Every call was metered, on both paths: 3 by served_fast, 3 compared on each, 1 more.
    assert _used(tenant.workspace_id) == 10
    loads = fastpath._state.loads
    for _ in range(5):
        assert post(tenant.key, cases[0])[0] == 200
    assert fastpath._state.loads == loads  # the key, plan and tools came from memory


def test_a_redis_that_forgot_the_admission_script_is_given_it_again():
    tenant = tenant_make()
    assert served_fast(tenant.key, _call("echo", {"text": "a"}))
    redis.Redis.from_url(settings.REDIS_URL).script_flush()  # what a restarted Redis looks like
    assert served_fast(tenant.key, _call("echo", {"text": "b"}))
    assert _used(tenant.workspace_id) == 2


def test_what_the_fast_path_declines_the_full_path_answers():
    tenant = tenant_make()
    declined = [
        _call("echo", {"text": 5}),  # invalid arguments: an isError result, no quota taken
        _call("no_such_tool", {}),  # unknown: -32602
        _call("echo", {"text": "x"}, meta={"progressToken": "p1"}),  # progress wanted: the SDK path streams
    ]
    for message in declined:
        assert not served_fast(tenant.key, message), message
        assert post(tenant.key, message)[:2] == post(tenant.key, message, fast=False)[:2]
    status, answer, _ = post(tenant.key, declined[1])
    assert status == 400
    assert answer["error"]["code"] == -32602
    assert post("tp_live_not_a_real_key_0000000000000000", _call("echo", {"text": "x"}))[0] == 401


def test_revoking_a_key_stops_the_fast_path_at_once():
    tenant = tenant_make()
    assert post(tenant.key, _call("echo", {"text": "a"}))[0] == 200  # the key is now cached in this process
    owner = Membership.objects.get(pk=tenant.owner.pk)  # type: ignore[attr-defined]
    key = ApiKey.objects.get(pk=api_key_authenticate(raw_key=tenant.key).id)
    api_key_revoke(actor=owner, key=key)

    status, body, headers = post(tenant.key, _call("echo", {"text": "b"}))
    assert status == 401
    assert "revoked" in body["message"]
    assert "resource_metadata" in headers["www-authenticate"]


def test_a_disabled_tool_and_a_plan_change_reach_the_fast_path_at_once():
    tenant = tenant_make()
    assert post(tenant.key, _call("echo", {"text": "a"}))[0] == 200
    tool = Tool.objects.get(name="echo", workspace__isnull=True)
    tool.enabled = False
    services.tool_save(tool=tool)
    try:
        status, body, _ = post(tenant.key, _call("echo", {"text": "b"}))
        assert status == 400
        assert body["error"]["code"] == -32602
    finally:
        tool.enabled = True
        services.tool_save(tool=tool)
    assert post(tenant.key, _call("echo", {"text": "c"}))[0] == 200

    _clear_of_the_minute_boundary()
    assert post(tenant.other_key, _call("echo", {"text": "d"}))[0] == 200  # cached, as 1 request this minute
    Plan.objects.filter(tier=Tier.FREE).update(requests_per_minute_per_key=3)
    quota_policy_forget(workspace_id=UUID(tenant.workspace_id))  # what a plan change does after its commit
    statuses = [post(tenant.other_key, _call("echo", {"text": "e"})) for _ in range(3)]
    assert [status for status, _body, _headers in statuses] == [200, 200, 429]
    _status, body, headers = statuses[-1]
    assert body["code"] == "rate_limited"
    assert int(headers["retry-after"]) >= 1


def test_the_rate_limit_answer_is_the_full_paths():
    tenant = tenant_make(Tier.STARTER, requests_per_minute_per_key=1)
    _clear_of_the_minute_boundary()
    assert post(tenant.key, _call("echo", {"text": "a"}))[0] == 200
    fast_status, fast_body, fast_headers = post(tenant.key, _call("echo", {"text": "a"}))
    full_status, full_body, _full_headers = post(tenant.key, _call("echo", {"text": "a"}), fast=False)
    assert fast_status == full_status == 429
    assert fast_body == full_body
    assert fast_headers.keys() >= {"retry-after", "cache-control"}


def test_quota_exhaustion_answers_as_the_full_path_and_takes_nothing_more():
    tenant = tenant_make(Tier.STARTER, api_calls_per_month=2, ai_operations_per_month=10)
    tool = Tool.objects.get(name="echo", workspace__isnull=True)
    tool.ai_operation_cost = 3
    services.tool_save(tool=tool)
    try:
        assert [post(tenant.key, _call("echo", {"text": "a"}))[0] for _ in range(2)] == [200, 200]
        assert (_used(tenant.workspace_id), _used(tenant.workspace_id, Metric.AI_OPERATIONS)) == (2, 6)
        fast = post(tenant.key, _call("echo", {"text": "a"}))
        full = post(tenant.key, _call("echo", {"text": "a"}), fast=False)
    finally:
        tool.ai_operation_cost = 0
        services.tool_save(tool=tool)
    retry_after = [answer[1]["error"]["data"].pop("retryAfter") for answer in (fast, full)]
    assert abs(retry_after[0] - retry_after[1]) <= 1  # seconds to the reset, counted when each answer was made
    assert fast[:2] == full[:2]
    _status, body, _ = fast
    assert body["error"]["code"] == -32029
    assert body["error"]["data"]["metric"] == "api_calls"
    assert "upgrade" in body["error"]["message"].lower()
    assert (_used(tenant.workspace_id), _used(tenant.workspace_id, Metric.AI_OPERATIONS)) == (2, 6)

    usage_flush()  # the fast path's usage reaches the durable ledger like any other
    ledger = UsageEntry.objects.filter(workspace_id=tenant.workspace_id)
    assert sum(entry.amount for entry in ledger if entry.metric == Metric.API_CALLS) == 2
    assert sum(entry.amount for entry in ledger if entry.metric == Metric.AI_OPERATIONS) == 6
