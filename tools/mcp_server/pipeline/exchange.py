"""One client request in flight (an *exchange*) and the back channel it gives tools: progress, log messages, and
server-to-client requests (sampling, elicitation) on the handshake-era transports.

A client's reply to a server request, and a cancellation, may arrive on another replica than the one serving the
exchange (legacy SSE and Streamable HTTP POSTs go anywhere). Each process has one channel-layer channel (`Router`):
a server request's id is `<that channel>|<n>`, so a reply goes straight to the process that asked; a cancellation
is looked up among this process's exchanges first, and otherwise broadcast to every process's channel (the
`mcp-cancel` group; cancellations are rare). Nothing is written to Redis per request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import mcp_types as types
from channels.layers import get_channel_layer
from django.conf import settings
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError

from tools.mcp_server.pipeline.auth import Credential
from tools.mcp_server.sessions import Peer, SessionRecord

logger = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
CANCEL_GROUP = "mcp-cancel"
REPLY_EVENT = "mcp.reply"
CANCEL_EVENT = "mcp.cancel"
ResultT = TypeVar("ResultT", bound=BaseModel)


class Exchange:
    """A request being served: who asks, in which session and protocol era, and where its output goes.

    `emit` sends a message related to this request before its response (on the response's SSE stream, the legacy
    SSE session stream, or the WebSocket); None when the transport can send nothing but the response."""

    def __init__(
        self,
        *,
        credential: Credential,
        transport: str,
        request_id: types.RequestId,
        method: str,
        params: Mapping[str, Any] | None,
        version: str,
        session: SessionRecord | None = None,
        emit: Emit | None = None,
        client_capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        self.credential = credential
        self.transport = transport
        self.request_id = request_id
        self.method = method
        self.params = params
        self.version = version
        self.session = session
        self.emit = emit
        self.client_capabilities = client_capabilities or {}
        self.meta: Mapping[str, Any] = (params or {}).get("_meta") or {}
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.negotiated: Peer | None = None  # set by `initialize`

    @classmethod
    def in_session(
        cls,
        credential: Credential,
        transport: str,
        message: dict[str, Any],
        session: SessionRecord,
        *,
        emit: Emit | None = None,
        version: str = "2025-03-26",
    ) -> Exchange:
        """A request in a handshake-era session, at the version and with the capabilities it negotiated (`version`
        until it has: the revision the transport implies)."""
        peer = session.peer_state
        return cls(
            credential=credential,
            transport=transport,
            request_id=message["id"],
            method=message["method"],
            params=message.get("params"),
            version=peer.protocol_version if peer else version,
            session=session,
            emit=emit,
            client_capabilities=peer.client_capabilities if peer else None,
        )

    # --- what tools use (ToolContext.mcp) ---------------------------------------------------------------------------

    @property
    def protocol_version(self) -> str:
        return self.version

    @property
    def modern(self) -> bool:
        return self.version in MODERN_PROTOCOL_VERSIONS

    def client_supports(self, capability: str) -> bool:
        return self.client_capabilities.get(capability) is not None

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        token = progress_token_from_params(self.params)
        if token is None:
            return
        params: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)

    async def log(self, level: str, data: Any, logger_name: str | None = None) -> None:
        """A log message, if the client asked for this level: per request at 2026-07-28 (`_meta`), per session
        (logging/setLevel) before."""
        wanted = self.meta.get(types.LOG_LEVEL_META_KEY) if self.modern else (self.session and self.session.log_level)
        if wanted not in LOG_LEVELS or LOG_LEVELS.index(level) < LOG_LEVELS.index(wanted):
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger_name is not None:
            params["logger"] = logger_name
        await self.notify("notifications/message", params)

    async def sample(self, messages: list[types.SamplingMessage], max_tokens: int, **options: Any) -> Any:
        params = types.CreateMessageRequestParams(messages=messages, max_tokens=max_tokens, **options)
        return await self.request("sampling/createMessage", params, types.CreateMessageResult)

    async def elicit(self, message: str, requested_schema: dict[str, Any]) -> types.ElicitResult:
        params = types.ElicitRequestFormParams(message=message, requested_schema=requested_schema)
        return await self.request("elicitation/create", params, types.ElicitResult)

    # --- the wire -----------------------------------------------------------------------------------------------

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        if self.emit is not None:
            await self.emit({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: BaseModel, result_type: type[ResultT]) -> ResultT:
        """Ask the client (handshake era only: 2026-07-28 has no server-to-client requests) and wait for its reply,
        wherever it arrives."""
        if self.modern or self.emit is None or self.session is None:
            raise NoBackChannelError(method)
        router = await router_get()
        request_id, reply = router.expect(self.session.id)
        body = params.model_dump(by_alias=True, exclude_none=True, mode="json")
        try:
            await self.emit({"jsonrpc": "2.0", "id": request_id, "method": method, "params": body})
            async with asyncio.timeout(settings.MCP_REQUEST_MAX_SECONDS):
                answer = await reply
        finally:
            router.waiting.pop(request_id, None)
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise MCPError(code=int(error.get("code", types.INTERNAL_ERROR)), message=str(error.get("message", "")))
        try:
            return result_type.model_validate(answer.get("result") or {}, by_name=False)
        except ValidationError as error:
            raise MCPError(code=types.INVALID_PARAMS, message=f"The client's answer to {method} is invalid.") from error

    def cancel(self) -> None:
        """The client cancelled the request: stop its work; no response goes out."""
        if self.cancelled:
            return  # (the client's cancellation and its going away may both arrive)
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()


class Router:
    """This process's channel for replies and cancellations, and the exchanges waiting on them."""

    def __init__(self) -> None:
        self.channel = "local"
        self.waiting: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}  # server request id → session, reply
        self.running: dict[tuple[str, str], Exchange] = {}  # (session, request id) → exchange, for cancellation
        self.numbers = itertools.count(1)
        self.task: asyncio.Task[None] | None = None
        self.membership: asyncio.Task[None] | None = None

    async def start(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        self.channel = await layer.new_channel()
        await layer.group_add(CANCEL_GROUP, self.channel)
        self.task = asyncio.get_running_loop().create_task(self._pump(layer))
        self.membership = asyncio.get_running_loop().create_task(self._stay_in_group(layer))

    def expect(self, session_id: str) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        request_id = f"{self.channel}|{next(self.numbers)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = (session_id, future)
        return request_id, future

    def track(self, session_id: str, exchange: Exchange) -> None:
        self.running[(session_id, repr(exchange.request_id))] = exchange

    def untrack(self, session_id: str, exchange: Exchange) -> None:
        self.running.pop((session_id, repr(exchange.request_id)), None)

    def deliver(self, session_id: str, message: dict[str, Any]) -> bool:
        waiting = self.waiting.get(str(message.get("id")))
        if waiting is None or waiting[0] != session_id or waiting[1].done():
            return False  # not ours, or another session's: a client cannot answer for someone else
        waiting[1].set_result(message)
        return True

    def cancel_local(self, session_id: str, request_id: Any) -> bool:
        exchange = self.running.get((session_id, repr(request_id)))
        if exchange is None:
            return False
        exchange.cancel()
        return True

    async def _stay_in_group(self, layer: Any) -> None:
        """Group memberships expire (channels-redis: after a day); a process lives longer."""
        while True:
            await asyncio.sleep(3600)
            try:
                await layer.group_add(CANCEL_GROUP, self.channel)
            except Exception:
                logger.warning("mcp.cancel_group_join_failed", exc_info=True)

    async def _pump(self, layer: Any) -> None:
        while True:
            try:
                event = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup must not leave waiting exchanges without their replies
                logger.warning("mcp.reply_channel_receive_failed", exc_info=True)
                await asyncio.sleep(0.2)
                continue
            if event.get("type") == REPLY_EVENT and isinstance(event.get("message"), dict):
                self.deliver(str(event.get("session")), event["message"])
            elif event.get("type") == CANCEL_EVENT:
                self.cancel_local(str(event.get("session")), event.get("request"))


_routers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Router] = weakref.WeakKeyDictionary()
_starting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[Router]] = weakref.WeakKeyDictionary()


async def router_get() -> Router:
    loop = asyncio.get_running_loop()
    router = _routers.get(loop)
    if router is not None:
        return router
    pending = _starting.get(loop)
    if pending is None:
        pending = _starting[loop] = loop.create_future()
        router = Router()
        try:
            await router.start()
        except BaseException as error:
            _starting.pop(loop, None)
            pending.set_exception(error)
            pending.exception()
            raise
        _routers[loop] = router
        pending.set_result(router)
        return router
    return await asyncio.shield(pending)


async def client_message_route(session_id: str, message: dict[str, Any]) -> None:
    """A client's response (to a server request) or notification, in a session: deliver it where it is awaited."""
    if "method" not in message:  # a response
        request_id = message.get("id")
        if not isinstance(request_id, str) or "|" not in request_id:
            return
        router = await router_get()
        channel = request_id.rsplit("|", 1)[0]
        if channel == router.channel:
            router.deliver(session_id, message)
            return
        layer = get_channel_layer()
        if layer is not None and channel.startswith("specific."):
            await layer.send(channel, {"type": REPLY_EVENT, "session": session_id, "message": message})
        return
    if message.get("method") == "notifications/cancelled":
        request_id = (message.get("params") or {}).get("requestId")
        if request_id is None:
            return
        router = await router_get()
        if router.cancel_local(session_id, request_id):
            return
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(CANCEL_GROUP, {"type": CANCEL_EVENT, "session": session_id, "request": request_id})
    # Other notifications (initialized, roots/list_changed, progress) need nothing from this server.
