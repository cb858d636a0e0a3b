"""The fast path: a stateless 2026-07-28 `tools/call` of a built-in tool, answered without the SDK's dispatcher.

Most MCP traffic is exactly this: one POST, one tool call, one JSON answer. The full path (the SDK's
single-exchange entry) builds a dispatcher, a connection and a task group for it, and our handlers hop to threads
for the ORM; that costs ~10 ms of CPU per call. Here the same checks run in one pass on the event loop:

1. the SDK's own envelope ladder (`classify_inbound_request`, duplicated routing headers), so a request the fast
   path takes is one the SDK would have accepted;
2. the API key, the plan and the key's visible tools from this process's memory (filled from the database on a
   miss, dropped when the access epoch moves: see `core.epoch`);
3. the arguments against the tool's JSON Schema;
4. one Redis script that admits the request: access epoch unchanged, the key's requests-per-minute, and the quota
   (`api_calls` plus the tool's AI-operation cost), writing the usage stream entry that becomes the durable ledger
   (`billing.quotas.usage_flush`), all atomically; sent on one pipelined connection per event loop;
5. the built-in under its timeout, its result in the shape the SDK would have sent.

Anything else (another method or transport, a progress token, `Mcp-Param-*` headers, an HTTP or upstream tool,
invalid arguments, an unknown tool, a failed key, an envelope error) is declined and the full path answers it, so
every error a client can see comes from one place. Tests compare the two paths answer for answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import hiredis
import mcp_types as types
from django.conf import settings
from django.utils import timezone
from mcp.server.runner import modern_error_data
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, InboundModernRoute, classify_inbound_request
from mcp.shared.inbound import find_duplicated_routing_header as duplicated_routing_header
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import SERVER_INFO_META_KEY
from redis import asyncio as aioredis
from redis.connection import parse_url
from redis.exceptions import NoScriptError, RedisError

from accounts.api_keys import AuthenticatedKey, api_key_authenticate, api_key_touch
from accounts.authentication import key_from_headers
from accounts.errors import InvalidApiKey
from billing.models import Metric
from billing.quotas import (
    QuotaPolicy,
    counters,
    quota_exceeded,
    quota_notice_due,
    quota_notice_if_crossed,
    quota_policy,
)
from core.epoch import access_epoch_key
from core.errors import LimitReached
from core.threads import parallel_sync, parallel_sync_reset, run_sync
from monitoring.calls import CallStatus, ToolCall, Transport, tool_call_observe
from tools.builtins import BuiltinFunction, ToolContext, ToolResult, builtin_get
from tools.executors import arguments_valid, tool_execute
from tools.mcp_server.runtime import runtime
from tools.mcp_server.server import QUOTA_EXCEEDED, _limit_error, result_to_mcp
from tools.mcp_server.sessions import RateLimited, rate_limit_key, rate_limited
from tools.mcp_server.transport import Send, limit_http_error, respond_error
from tools.models import Tool, ToolKind
from tools.selectors import visible_tools

logger = logging.getLogger(__name__)

# KEYS: epoch, rpm counter, then (quota counter) per metric, then the usage stream.
# ARGV: expected epoch, rpm limit (-1: none), workspace, period start, then (metric, amount, limit) per metric.
# Returns {status, detail}: 1 admitted (detail: api_calls used after), -2 epoch moved, -1 a quota counter is not
# seeded (the metric's index), -3 rate limited (count), 0 quota exceeded (index, used). Nothing is written before
# the -2 and -1 answers; the rate is counted before the quota is checked, as on the full path.
_ADMIT_SCRIPT = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return {-2, epoch} end
local metrics = (#ARGV - 4) / 3
local used = {}
for i = 1, metrics do
  local value = redis.call('GET', KEYS[2 + i])
  if not value then return {-1, i} end
  used[i] = tonumber(value)
end
local rpm_limit = tonumber(ARGV[2])
if rpm_limit >= 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], 120) end
  if count > rpm_limit then return {-3, count} end
end
for i = 1, metrics do
  local limit = tonumber(ARGV[4 + 3 * i])
  if limit >= 0 and used[i] + tonumber(ARGV[3 + 3 * i]) > limit then return {0, i, used[i]} end
end
local stream = KEYS[3 + metrics]
local first = 0
for i = 1, metrics do
  local amount = tonumber(ARGV[3 + 3 * i])
  local after = redis.call('INCRBY', KEYS[2 + i], amount)
  if i == 1 then first = after end
  redis.call('XADD', stream, '*', 'w', ARGV[3], 'm', ARGV[2 + 3 * i], 'p', ARGV[4], 'a', amount)
end
return {1, first}
"""
_ADMIT_SHA = hashlib.sha1(_ADMIT_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


@dataclass
class FastTool:
    """What the fast path needs to run one visible built-in tool."""

    tool: Tool
    function: BuiltinFunction


@dataclass
class KeyEntry:
    """An authenticated key with its plan and visible tools, as of `epoch`."""

    key: AuthenticatedKey
    policy: QuotaPolicy
    tools: dict[str, FastTool | None]  # name → runnable here, or None: visible, but the full path serves it
    epoch: str
    loaded_at: float
    touched_at: float = field(default=0.0)
    rpm_key_prefix: str = ""
    admissions: dict[str, tuple[list[tuple[str, int]], list[str], list[Any]]] = field(default_factory=dict)

    def admission(self, tool: Tool) -> tuple[list[tuple[str, int]], list[str], list[Any]]:
        """The admission script's metrics, keys (but the minute's rate counter) and arguments for `tool`; the
        same for every call of the tool until the caches are read again, so they are built once."""
        made = self.admissions.get(tool.name)
        if made is None:
            policy, backend = self.policy, counters()
            metrics = [(str(Metric.API_CALLS), 1)]
            if tool.ai_operation_cost:
                metrics.append((str(Metric.AI_OPERATIONS), tool.ai_operation_cost))
            keys = [access_epoch_key(), *(backend.key(policy, metric) for metric, _ in metrics)]  # type: ignore[attr-defined]
            keys.append(backend.stream)  # type: ignore[attr-defined]
            rpm = policy.requests_per_minute_per_key
            arguments: list[Any] = [self.epoch, -1 if rpm is None else rpm, str(policy.workspace_id)]
            arguments.append(policy.period_start.isoformat())
            for metric, amount in metrics:
                limit = policy.limit(metric)
                arguments += [metric, amount, -1 if limit is None else limit]
            made = self.admissions[tool.name] = (metrics, keys, arguments)
        return made


class _State:
    def __init__(self) -> None:
        self.epoch: str | None = None
        self.keys: dict[str, KeyEntry] = {}  # sha256 of the raw key → entry
        self.loads = 0  # reads from the database, for tests and profiles
        self.loading: dict[str, asyncio.Future[KeyEntry]] = {}  # one read per key at a time

    def forget(self, epoch: str | None) -> None:
        self.keys.clear()
        self.loading.clear()
        self.epoch = epoch


_state = _State()
_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}
_background: set[asyncio.Task[Any]] = set()


class Declined(Exception):
    """The full path serves this request."""


def enabled() -> bool:
    return bool(settings.MCP_FAST_PATH and settings.REDIS_URL)


async def fast_tool_call(scope: dict[str, Any], headers: dict[str, str], body: bytes, send: Send) -> bool:
    """Answer the request and return True, or return False (nothing sent) for the full path to serve it."""
    token = parallel_sync()  # sync work (a cache miss, a sync built-in) runs in the shared pool, as in the full path
    try:
        return await _serve(scope, headers, body, send)
    finally:
        parallel_sync_reset(token)


async def _serve(scope: dict[str, Any], headers: dict[str, str], body: bytes, send: Send) -> bool:
    started = time.perf_counter()
    tool: Tool | None = None
    try:
        request_id, params = _envelope(scope, headers, body)
        entry = await _entry(headers)
        fast = entry.tools.get(params["name"])
        if fast is None:
            raise Declined
        arguments = params.get("arguments") or {}
        tool = fast.tool
        if not arguments_valid(tool, arguments):
            raise Declined
        await _admit(entry, tool)
    except Declined:
        return False
    except RateLimited as error:
        await respond_error(send, limit_http_error(error))  # the full path's 429, word for word
        _observe(entry, tool, CallStatus.DENIED, started, 429)
        return True
    except LimitReached as error:
        await _respond_rpc_error(send, request_id, _limit_error(error))
        _observe(entry, tool, CallStatus.QUOTA, started, QUOTA_EXCEEDED)
        return True
    context = ToolContext(workspace_id=entry.key.workspace_id, api_key=entry.key)
    result = await tool_execute(fast.tool, context, arguments, reuse_connections=True)
    payload = _result_payload(result)
    payload["_meta"] = {SERVER_INFO_META_KEY: await _server_info()}  # as the SDK stamps 2026-era results
    await _respond(send, 200, _dumps({"jsonrpc": "2.0", "id": request_id, "result": payload}))
    _observe(entry, fast.tool, CallStatus.TOOL_ERROR if result.is_error else CallStatus.OK, started, None)
    _touch_later(entry)
    return True


def _observe(entry: KeyEntry, tool: Tool | None, status: str, started: float, code: int | None) -> None:
    if tool is None:  # (admission runs after the tool is known)
        return
    tool_call_observe(
        ToolCall(
            workspace_id=entry.key.workspace_id,
            tool=tool.name,
            status=status,
            latency_ms=(time.perf_counter() - started) * 1000,
            transport=Transport.STREAMABLE_HTTP,
            api_key_id=entry.key.id,
            error_code=code,
            ai_operations=tool.ai_operation_cost if status in (CallStatus.OK, CallStatus.TOOL_ERROR) else 0,
        )
    )


def _envelope(scope: dict[str, Any], headers: dict[str, str], body: bytes) -> tuple[Any, dict[str, Any]]:
    """The request's id and params, if it is a well-formed stateless tools/call that wants JSON and that the SDK's
    envelope ladder accepts."""
    accept = headers.get("accept", "")
    if "application/json" not in accept or "text/event-stream" not in accept:
        raise Declined
    if not headers.get("content-type", "").startswith("application/json"):
        raise Declined
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise Declined from error
    if not isinstance(decoded, dict) or decoded.get("jsonrpc") != "2.0" or decoded.get("method") != "tools/call":
        raise Declined
    request_id = decoded.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int) or len(decoded) > 4:
        raise Declined
    params = decoded.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        raise Declined
    if not isinstance(params.get("arguments", {}), dict) or progress_token_from_params(params) is not None:
        raise Declined
    if any(name.startswith("mcp-param-") for name in headers):
        raise Declined
    raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", [])]
    if duplicated_routing_header(raw) is not None:
        raise Declined
    if not isinstance(classify_inbound_request(decoded, headers=headers), InboundModernRoute):
        raise Declined
    return request_id, params


# --- keys, plans and tools in memory -----------------------------------------------------------------------------


async def _entry(headers: Mapping[str, str]) -> KeyEntry:
    raw_key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
    if raw_key is None:
        raise Declined
    digest = hashlib.sha256(raw_key.encode()).hexdigest()
    entry = _state.keys.get(digest)
    now = time.monotonic()
    if entry is not None and (
        entry.epoch != _state.epoch or now - entry.loaded_at > settings.MCP_FAST_PATH_CACHE_SECONDS
    ):
        entry = None
    if entry is None:
        entry = await _entry_load(raw_key, digest)
    moment = timezone.now()
    key = entry.key
    if (key.revoked_at is not None and key.revoked_at <= moment) or (
        key.expires_at is not None and key.expires_at <= moment
    ):
        raise Declined  # the full path answers 401 with the reason
    if moment >= entry.policy.period_end:
        raise Declined  # a new billing period: the full path reads the new plan and counters
    return entry


async def _entry_load(raw_key: str, digest: str) -> KeyEntry:
    """Read the key's entry, once however many requests of that key wait for it."""
    pending = _state.loading.get(digest)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[KeyEntry] = asyncio.get_running_loop().create_future()
    _state.loading[digest] = future
    try:
        if _state.epoch is None:
            _state.forget(await _epoch_read())
        entry = await run_sync(_load)(raw_key, _state.epoch)
        _state.loads += 1
        if len(_state.keys) >= 10_000:
            _state.keys.clear()
        _state.keys[digest] = entry
        future.set_result(entry)
        return entry
    except BaseException as error:
        future.set_exception(error if isinstance(error, Exception) else Declined())
        future.exception()  # retrieved: waiters re-raise it, nobody else needs to
        raise
    finally:
        _state.loading.pop(digest, None)


def _load(raw_key: str, epoch: str | None) -> KeyEntry:
    """Read a key, its plan and its visible built-in tools (after the epoch was read, so never older than it)."""
    try:
        key = api_key_authenticate(raw_key=raw_key)
    except InvalidApiKey as error:
        raise Declined from error
    policy = quota_policy(workspace_id=key.workspace_id)
    tools: dict[str, FastTool | None] = {}
    for tool in visible_tools(workspace_id=key.workspace_id, api_key=key, cached_plan=True):
        builtin = builtin_get(tool.builtin_name or tool.name) if tool.kind == ToolKind.BUILTIN else None
        headers_declared = "x-mcp-header" in json.dumps(tool.input_schema)
        tools[tool.name] = FastTool(tool, builtin.function) if builtin and not headers_declared else None
    return KeyEntry(
        key=key,
        policy=policy,
        tools=tools,
        epoch=epoch or "0",
        loaded_at=time.monotonic(),
        rpm_key_prefix=rate_limit_key(key.id, 0)[: -len("0")],
    )


def _touch_later(entry: KeyEntry) -> None:
    """The key's last-used time, written off the request (at most once a minute per key and process)."""
    now = time.monotonic()
    if now - entry.touched_at < 60:
        return
    entry.touched_at = now
    task: asyncio.Task[None] = asyncio.ensure_future(run_sync(api_key_touch)(entry.key))
    _background.add(task)
    task.add_done_callback(_background.discard)


# --- admission ---------------------------------------------------------------------------------------------------


def _redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for stale in [known for known in _clients if known.is_closed()]:
            _clients.pop(stale, None)
        client = _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client


async def _epoch_read() -> str:
    value = await _redis_call("GET", access_epoch_key())
    return value.decode() if isinstance(value, bytes) else str(value or "0")


async def _admit(entry: KeyEntry, tool: Tool) -> None:
    """Epoch, rate and quota in one atomic script; raises RateLimited or QuotaExceeded, or Declined when the
    caches must be read again (the full path serves this request, the next one finds fresh caches)."""
    policy = entry.policy
    metrics, keys, arguments = entry.admission(tool)
    rpm = policy.requests_per_minute_per_key
    now = time.time()
    keys = [keys[0], f"{entry.rpm_key_prefix}{int(now // 60)}", *keys[1:]]
    for _attempt in range(3):
        reply = await _evalsha(keys, arguments)
        status = int(reply[0])
        if status == 1:
            used = int(reply[1])
            if quota_notice_due(policy, Metric.API_CALLS, before=used - 1, after=used):
                await run_sync(quota_notice_if_crossed)(policy, Metric.API_CALLS, before=used - 1, after=used)
            return
        if status == -2:
            _state.forget(reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1]))
            raise Declined
        if status == -3:
            raise rate_limited(rpm or 0, time.time())
        if status == -1:
            metric = metrics[int(reply[1]) - 1][0]
            await run_sync(counters().used)(policy, metric)  # seeds the counter from the durable ledger
            continue
        metric = metrics[int(reply[1]) - 1][0]
        raise await run_sync(quota_exceeded)(policy, metric, int(reply[2]))
    raise Declined


class _AdmissionChannel(asyncio.Protocol):
    """One pipelined Redis connection per event loop for the admission script, on hiredis (the C reader and command
    packer redis-py itself uses): a call is one `write` and a future resolved in reply order. redis-py's asyncio
    client spends most of a fast-path call's Redis share in Python (a pooled connection, retries, packing and
    parsing per command); this stays under a tenth of it. Everything else talks to Redis through redis-py."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, url: str) -> _AdmissionChannel:
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        if "path" in options:
            _transport, channel = await loop.create_unix_connection(cls, options["path"])
        else:
            _transport, channel = await loop.create_connection(cls, options["host"], options["port"])
        if options.get("password"):
            credentials = [options["username"]] if options.get("username") else []
            await channel.call("AUTH", *credentials, options["password"])
        if options.get("db"):
            await channel.call("SELECT", options["db"])
        return channel

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, error: Exception | None) -> None:
        self.transport = None
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("Redis closed the connection"))

    async def call(self, *command: Any) -> Any:
        if self.transport is None:
            raise ConnectionError("not connected to Redis")
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(hiredis.pack_command(command))
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            raise NoScriptError(str(reply)) if str(reply).startswith("NOSCRIPT") else RedisError(str(reply))
        return reply


_channels: dict[asyncio.AbstractEventLoop, _AdmissionChannel] = {}
_opening: dict[asyncio.AbstractEventLoop, asyncio.Future[_AdmissionChannel]] = {}


async def _channel() -> _AdmissionChannel:
    loop = asyncio.get_running_loop()
    channel = _channels.get(loop)
    if channel is not None and channel.usable:
        return channel
    pending = _opening.get(loop)
    if pending is None:
        for stale in [known for known in _channels if known.is_closed()]:
            _channels.pop(stale, None)
        pending = _opening[loop] = asyncio.ensure_future(_AdmissionChannel.open(settings.REDIS_URL))
        pending.add_done_callback(lambda _done: _opening.pop(loop, None))
    channel = _channels[loop] = await asyncio.shield(pending)
    return channel


async def _redis_call(*command: Any) -> Any:
    """A command on this loop's admission connection (TLS URLs: through redis-py)."""
    if settings.REDIS_URL.startswith("rediss://"):
        return await _redis().execute_command(*command)
    return await (await _channel()).call(*command)


async def _evalsha(keys: list[str], arguments: list[Any]) -> Any:
    try:
        try:
            return await _redis_call("EVALSHA", _ADMIT_SHA, len(keys), *keys, *arguments)
        except NoScriptError:  # a new or restarted Redis: load the script once, then go on by its hash
            await _redis_call("SCRIPT", "LOAD", _ADMIT_SCRIPT)
            return await _redis_call("EVALSHA", _ADMIT_SHA, len(keys), *keys, *arguments)
    except (RedisError, OSError) as error:
        logger.warning("mcp.fast_path_redis_failed", exc_info=True)
        raise Declined from error


# --- answers -----------------------------------------------------------------------------------------------------


_server_info_stamp: dict[str, Any] | None = None


async def _server_info() -> dict[str, Any]:
    """The server's identity as the SDK stamps it (read-only here: it is serialized at once)."""
    global _server_info_stamp
    if _server_info_stamp is None:
        _server_info_stamp = (await runtime()).server.server_info_stamp
    return _server_info_stamp


def _result_payload(result: ToolResult) -> dict[str, Any]:
    """The CallToolResult on the wire; a text-only result is built directly (most are; tests compare both)."""
    if result.structured is None and not result.images and not result.extra_content:
        return {
            "content": [{"type": "text", "text": result.text}],
            "isError": result.is_error,
            "resultType": "complete",
        }
    return result_to_mcp(result).model_dump(mode="json", by_alias=True, exclude_none=True)


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    if status >= 400:
        headers.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_rpc_error(send: Send, request_id: Any, error: Exception) -> None:
    data = modern_error_data(error)
    status = ERROR_CODE_HTTP_STATUS.get(data.code, 200)
    message = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=data)
    await _respond(send, status, _dumps(message.model_dump(mode="json", by_alias=True, exclude_none=True)))


def _cache_reset() -> None:
    """For tests: forget every key, plan and tool this process holds."""
    _state.forget(None)
