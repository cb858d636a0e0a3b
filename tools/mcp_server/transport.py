"""What every MCP transport does around the protocol core: check the origin, authenticate, apply the plan's rate,
read a bounded body, route a client's replies and cancellations, and subscribe to the session's notifications.

Channel-layer groups (Redis across replicas, in-process by default):
- `mcp-s-<session>`: messages for the streams of one session (legacy SSE output, resource updates);
- `mcp-w-<workspace>` and `mcp-all`: registry changes, pushed as `notifications/*/list_changed`.
A client's reply to a server request goes straight to the channel of the exchange that asked (its address is in
the request id, see `core.reply_address_of`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import anyio
import mcp_types as types
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from pydantic import ValidationError

from accounts.api_keys import api_key_authenticate
from accounts.authentication import key_from_headers
from accounts.errors import InvalidApiKey
from billing.quotas import quota_policy
from core.errors import LimitReached, error_body
from tools.mcp_server import sessions
from tools.mcp_server.caller import Caller
from tools.mcp_server.core import reply_address_of

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

ALL_GROUP = "mcp-all"
REPLY_EVENT = "mcp.reply"
NOTIFY_EVENT = "mcp.notify"


def session_group(session_id: str) -> str:
    return f"mcp-s-{session_id}"


def workspace_group(workspace_id: Any) -> str:
    return f"mcp-w-{workspace_id}"


class HttpError(Exception):
    """Answer the HTTP request with this status and a JSON body (and optional headers)."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, rpc: bool = False
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.rpc = status, code, message, headers or {}, rpc


def headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def public_base(scope: dict[str, Any], headers: dict[str, str]) -> str:
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{headers.get('host', 'localhost')}"


def resource_metadata_url(scope: dict[str, Any], headers: dict[str, str]) -> str:
    return public_base(scope, headers) + "/.well-known/oauth-protected-resource/mcp"


@lru_cache(maxsize=256)
def _host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


def origin_check(headers: dict[str, str]) -> None:
    """DNS rebinding guard: the Host must be one of ours, and a browser's Origin must be ours or allowed."""
    host = headers.get("host", "")
    if not _host_allowed(host, tuple(settings.ALLOWED_HOSTS)):
        raise HttpError(403, "host_not_allowed", f"The Host header {host!r} is not one this server answers to.")
    origin = headers.get("origin")
    if not origin:
        return  # not a browser: nothing a rebinding attack could use
    allowed = {entry.rstrip("/") for entry in settings.MCP_ALLOWED_ORIGINS}
    origin_host = urlsplit(origin).netloc
    if origin.rstrip("/") in allowed or (origin_host and origin_host == host):
        return
    raise HttpError(403, "origin_not_allowed", f"Requests from the origin {origin!r} are not allowed.")


@dataclass
class Authenticated:
    caller: Caller
    key_id: UUID | None
    max_sessions: int | None


async def authenticate(scope: dict[str, Any], headers: dict[str, str], transport: str) -> Authenticated:
    """The caller of this request (API key → workspace and scopes), or HttpError 401 with the RFC 9728 challenge."""
    challenge = f'Bearer resource_metadata="{resource_metadata_url(scope, headers)}"'
    try:
        raw_key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        if raw_key is None:
            conformance = settings.MCP_CONFORMANCE_WORKSPACE
            if conformance:
                return await _anonymous(conformance, transport)
            raise InvalidApiKey(
                "This endpoint needs an API key: send 'Authorization: Bearer <key>' (create one in the console)."
            )
        key = await sync_to_async(api_key_authenticate, thread_sensitive=False)(raw_key=raw_key)
    except InvalidApiKey as error:
        raise HttpError(401, error.code, error.message, headers={"WWW-Authenticate": challenge}) from error
    policy = await sync_to_async(quota_policy, thread_sensitive=False)(workspace_id=key.workspace_id)
    try:
        await sessions.rate_limit_check(key_id=key.id, limit=policy.requests_per_minute_per_key)
    except LimitReached as error:
        raise limit_http_error(error) from error
    caller = Caller(workspace_id=key.workspace_id, api_key=key, transport=transport)
    return Authenticated(caller=caller, key_id=key.id, max_sessions=policy.max_concurrent_sessions)


async def _anonymous(workspace_slug: str, transport: str) -> Authenticated:
    """Conformance mode only (never in production settings): the fixture workspace, no key, no limits."""
    from tools.mcp_server.conformance import conformance_workspace_id

    workspace_id = await sync_to_async(conformance_workspace_id, thread_sensitive=False)(workspace_slug)
    return Authenticated(Caller(workspace_id=workspace_id, transport=transport), key_id=None, max_sessions=None)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, error: HttpError) -> None:
    body: dict[str, Any]
    if error.rpc:
        code = types.PARSE_ERROR if error.code == "parse_error" else types.INVALID_REQUEST
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": error.message}}
    else:
        body = error_body(error.code, error.message)
    await respond(send, error.status, json.dumps(body).encode(), headers=error.headers)


def limit_http_error(error: LimitReached) -> HttpError:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    return HttpError(429, error.code, error.message, headers=headers)


async def body_read(receive: Receive) -> bytes:
    """The request body, refusing more than MCP_MAX_BODY_BYTES (413) before reading it all."""
    limit = settings.MCP_MAX_BODY_BYTES
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "disconnected", "The client went away.")
        body.extend(message.get("body", b""))
        if len(body) > limit:
            raise HttpError(413, "body_too_large", f"The request body is larger than {limit:,} bytes.")
        if not message.get("more_body"):
            return bytes(body)


def message_parse(body: bytes) -> types.JSONRPCMessage:
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise HttpError(400, "parse_error", "Parse error: the body is not JSON.", rpc=True) from error
    if isinstance(decoded, list):
        raise HttpError(400, "invalid_request", "Batches are not supported: send one JSON-RPC message.", rpc=True)
    try:
        return types.jsonrpc_message_adapter.validate_python(decoded, by_name=False)
    except ValidationError as error:
        raise HttpError(400, "invalid_request", "Invalid request: not a JSON-RPC 2.0 message.", rpc=True) from error


async def reply_route(session_id: str, message: types.JSONRPCMessage) -> None:
    """Deliver a client's reply (or a cancellation) to the exchange waiting for it, wherever it runs."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
        address = reply_address_of(message.id) if message.id is not None else None
    else:
        request_id = (message.params or {}).get("requestId") if isinstance(message, types.JSONRPCNotification) else None
        address = await sessions.inflight_get(session_id, request_id) if request_id is not None else None
    if address and address.startswith("specific.") and "|" in address:
        channel, token = address.rsplit("|", 1)
        payload = {"type": REPLY_EVENT, "session": session_id, "exchange": token, "message": _dump(message)}
        await layer.send(channel, payload)


async def session_of(caller: Caller, session_id: str, *, transport: str | None = None) -> sessions.SessionRecord:
    """The caller's session `session_id`, and the caller now speaks in it. An unknown, expired or closed session and
    one that another key opened get the same 404: a key learns nothing about sessions that are not its own."""
    record = await sessions.session_get(session_id)
    key_id = str(caller.api_key.id) if caller.api_key is not None else None
    if (
        record is None
        or record.key_id != key_id
        or record.workspace_id != str(caller.workspace_id)
        or (transport is not None and record.transport != transport)
    ):
        raise HttpError(404, "session_not_found", "Session not found: it expired or was closed. Initialize again.")
    caller.session_id = record.id
    caller.log_level = record.log_level
    return record


class _ReplyRouter:
    """One channel per process for every exchange waiting on a reply: a single task receives on it and hands each
    reply to its exchange (a channel and a receive loop per exchange would serialize on the channel layer)."""

    def __init__(self) -> None:
        self.channel: str | None = None
        self.inboxes: dict[str, Inbox] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def address(self) -> str | None:
        layer = get_channel_layer()
        if layer is None:
            return None
        async with self._lock:
            if self._task is None or self._task.done():
                self.channel = await layer.new_channel()
                self._task = asyncio.get_running_loop().create_task(self._pump(layer, self.channel))
        return self.channel

    async def _pump(self, layer: Any, channel: str) -> None:
        while True:
            try:
                event = await layer.receive(channel)
            except Exception:  # a Redis hiccup must not leave waiting exchanges without their replies
                logger.warning("mcp.reply_channel_receive_failed", exc_info=True)
                await asyncio.sleep(0.2)
                continue
            inbox = self.inboxes.get(event.get("exchange", ""))
            if event.get("type") != REPLY_EVENT or inbox is None or event.get("session") != inbox.session_id:
                continue
            try:
                message = types.jsonrpc_message_adapter.validate_python(event["message"], by_name=False)
            except ValidationError:
                continue
            inbox.send_stream.send_nowait(message)


_routers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ReplyRouter] = weakref.WeakKeyDictionary()


class Inbox:
    """An exchange's mailbox: replies to its server requests and cancellations of its request arrive here, on
    whichever replica they were posted to. Its address is `<this process's reply channel>|<token>`."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.token = secrets.token_hex(8)
        self.address: str | None = None
        self.send_stream, self.receive_stream = anyio.create_memory_object_stream[types.JSONRPCMessage](64)

    async def open(self) -> str | None:
        router = _routers.setdefault(asyncio.get_running_loop(), _ReplyRouter())
        channel = await router.address()
        if channel is None:
            return None
        router.inboxes[self.token] = self
        self.address = f"{channel}|{self.token}"
        return self.address

    def close(self) -> None:
        router = _routers.get(asyncio.get_running_loop())
        if router is not None:
            router.inboxes.pop(self.token, None)


def _dump(message: types.JSONRPCMessage) -> dict[str, Any]:
    return message.model_dump(by_alias=True, exclude_unset=True, mode="json")


def message_bytes(message: types.JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


async def notify_groups_join(channel: str, *groups: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        await layer.group_add(group, channel)


async def notify_groups_leave(channel: str, *groups: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        await layer.group_discard(group, channel)
