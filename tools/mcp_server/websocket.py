"""`/mcp/ws`: MCP over WebSocket, a custom transport (see docs/mcp.md).

The client offers the subprotocol `mcp`; the origin and the API key are checked before the handshake is accepted
(a refused handshake is closed with 4403 for the origin, 4401 for the key). Then every text frame carries one JSON-RPC
message, both ways. The connection is the session: it opens with `initialize`, and registry changes reach it as
`notifications/*/list_changed` through the channel layer like any other session.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp_types as types
from channels.layers import get_channel_layer
from pydantic import ValidationError

from core.errors import LimitReached
from monitoring.metrics import session_open
from tools.mcp_server import sessions
from tools.mcp_server.caller import Caller, caller_reset, caller_set
from tools.mcp_server.core import Exchange, Peer, exchange_run
from tools.mcp_server.runtime import runtime
from tools.mcp_server.streams import stream_payload
from tools.mcp_server.transport import (
    ALL_GROUP,
    HttpError,
    Inbox,
    Receive,
    Send,
    authenticate,
    headers_of,
    message_bytes,
    notify_groups_join,
    notify_groups_leave,
    origin_check,
    reply_route,
    session_group,
    workspace_group,
)

logger = logging.getLogger(__name__)

SUBPROTOCOL = "mcp"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429


async def websocket_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    headers = headers_of(scope)
    if SUBPROTOCOL not in (scope.get("subprotocols") or []):
        await send({"type": "websocket.close", "code": 1002, "reason": "Offer the 'mcp' subprotocol."})
        return
    try:
        origin_check(headers)
        auth = await authenticate(scope, headers, "websocket")
        record = await sessions.session_create(
            key_id=auth.key_id,
            workspace_id=auth.caller.workspace_id,
            transport="websocket",
            max_sessions=auth.max_sessions,
        )
    except HttpError as error:
        code = (
            CLOSE_UNAUTHENTICATED if error.status == 401 else CLOSE_TOO_MANY if error.status == 429 else CLOSE_FORBIDDEN
        )
        await send({"type": "websocket.close", "code": code, "reason": error.message[:120]})
        return
    except LimitReached as error:
        await send({"type": "websocket.close", "code": CLOSE_TOO_MANY, "reason": error.message[:120]})
        return
    await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
    connection = _Connection(auth.caller, record, send)
    try:
        with session_open("websocket"):
            await connection.run(receive)
    finally:
        with anyio.CancelScope(shield=True):
            await sessions.session_delete(record)


class _Connection:
    def __init__(self, caller: Caller, record: sessions.SessionRecord, send: Send) -> None:
        self.caller = caller
        self.caller.session_id = record.id
        self.record = record
        self.send = send
        self.peer: Peer | None = None
        self.lock = anyio.Lock()

    async def write(self, message: types.JSONRPCMessage | dict[str, Any]) -> None:
        text = message_bytes(message).decode() if not isinstance(message, dict) else json.dumps(message)
        async with self.lock:
            await self.send({"type": "websocket.send", "text": text})

    async def run(self, receive: Receive) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel() if layer is not None else None
        groups = (session_group(self.record.id), workspace_group(self.caller.workspace_id), ALL_GROUP)
        if channel:
            await notify_groups_join(channel, *groups)
        try:
            async with anyio.create_task_group() as group:
                if channel and layer is not None:
                    group.start_soon(self._notifications, layer, channel)
                while True:
                    event = await receive()
                    if event["type"] == "websocket.disconnect":
                        break
                    text = event.get("text")
                    if text is None:
                        await self.write(_error(None, types.INVALID_REQUEST, "Send JSON-RPC as text frames."))
                        continue
                    await self._frame(group, text)
                group.cancel_scope.cancel()
        finally:
            if channel:
                with anyio.CancelScope(shield=True):
                    await notify_groups_leave(channel, *groups)

    async def _frame(self, group: Any, text: str) -> None:
        try:
            decoded = json.loads(text)
            message = types.jsonrpc_message_adapter.validate_python(decoded, by_name=False)
        except (ValueError, ValidationError):
            await self.write(_error(None, types.PARSE_ERROR, "Parse error: one JSON-RPC message per text frame."))
            return
        if not isinstance(message, types.JSONRPCRequest):
            await reply_route(self.record.id, message)
            return
        if message.method != "initialize" and self.peer is None:
            await self.write(_error(message.id, types.INVALID_REQUEST, "Send initialize first."))
            return
        token = caller_set(self.caller)
        try:
            if message.method == "initialize":
                await self._serve(message)  # inline: the next frame is read once the session knows its peer
            else:
                group.start_soon(self._serve, message)
        finally:
            caller_reset(token)

    async def _serve(self, message: types.JSONRPCRequest) -> None:
        state = await runtime()
        inbox = Inbox(self.record.id)
        address = await inbox.open()
        if address:
            await sessions.inflight_set(self.record.id, message.id, address)
        try:
            async with anyio.create_task_group() as group:
                await exchange_run(
                    state.server,
                    state.lifespan_state,
                    Exchange(
                        message,
                        self.write,
                        transport="websocket",
                        reply_address=address,
                        on_initialized=self._initialized,
                    ),
                    peer=self.peer,
                    inbox=inbox.receive_stream,
                )
                group.cancel_scope.cancel()
        finally:
            inbox.close()
            if address:
                with anyio.CancelScope(shield=True):
                    await sessions.inflight_delete(self.record.id, message.id)

    async def _initialized(self, negotiated: Peer) -> None:
        self.peer = negotiated
        await sessions.session_update(self.record.id, peer=negotiated)

    async def _notifications(self, layer: Any, channel: str) -> None:
        while True:
            try:
                event = await layer.receive(channel)
            except Exception:  # a Redis hiccup must not close the connection
                logger.warning("mcp.websocket_receive_failed", exc_info=True)
                await anyio.sleep(0.2)
                continue
            payload = await stream_payload(event, self.record.id)
            if payload is not None:
                await self.write(payload)


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
