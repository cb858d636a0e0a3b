"""`/mcp/ws`: MCP over WebSocket, a custom transport (see docs/mcp.md).

The client offers the subprotocol `mcp` and a credential: the `Authorization: Bearer <key>` header, or, for clients
that cannot set headers (browsers, the TypeScript SDK's `WebSocketClientTransport`), an `api_key` query parameter
(never logged: see core.logging's redaction). The origin and the key are checked before the session opens: a
refused handshake is accepted and closed at once, with 4403 for the origin, 4401 for the key, 4429 for the rate. Then
every text frame carries one JSON-RPC message, both ways. The connection is the session: it opens with
`initialize`, and registry changes reach it as `notifications/*/list_changed` like any other session.

Every frame is admitted like an HTTP request: it counts against the key's rate (a frame over it is answered with a
JSON-RPC error carrying `retryAfter`), and a key revoked, expired or rotated out meanwhile closes the socket (4401)
on its next frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

import mcp_types as types
from django.conf import settings

from accounts.errors import InvalidApiKey
from billing.admission import AdmissionUnavailable, RateLimited
from monitoring.metrics import session_open
from tools.mcp_server import pipeline, sessions
from tools.mcp_server.pipeline.admission import SessionGone
from tools.mcp_server.pipeline.auth import Credential
from tools.mcp_server.pipeline.errors import HttpError, limit_error, rpc_error
from tools.mcp_server.pipeline.exchange import Exchange
from tools.mcp_server.transports.event_stream import _CLOSE, Subscription
from tools.mcp_server.transports.http import Receive, Send, credential_of, headers_of, origin_check, session_start

logger = logging.getLogger(__name__)

SUBPROTOCOL = "mcp"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
CLOSE_UNAVAILABLE = 1013  # try again later
CLOSE_TOO_BIG = 1009
MAX_IN_FLIGHT = 64  # requests one connection may have running at once
SESSION_ENDED = "This session has ended (closed, evicted at the plan's session cap, or idle too long). Reconnect."


def key_from_query(scope: dict[str, Any]) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key")
    return values[0] if values else None


async def websocket_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    headers = headers_of(scope)
    if SUBPROTOCOL not in (scope.get("subprotocols") or []):
        await send({"type": "websocket.close", "code": 1002, "reason": "Offer the 'mcp' subprotocol."})
        return
    try:
        origin_check(headers)
        credential = await credential_of(scope, headers, key_from_query(scope))
        credential, record = await session_start(scope, headers, credential, "websocket")
    except HttpError as error:
        code = {401: CLOSE_UNAUTHENTICATED, 429: CLOSE_TOO_MANY, 503: CLOSE_UNAVAILABLE}.get(
            error.status, CLOSE_FORBIDDEN
        )
        # Accepted, then closed with the reason: a close before the accept is a bare HTTP 403 to every client.
        await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
        await send({"type": "websocket.close", "code": code, "reason": error.message[:120]})
        return
    await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
    connection = _Connection(credential, record, send)
    try:
        with session_open("websocket"):
            await connection.run(receive)
    finally:
        await asyncio.shield(sessions.session_delete(record))


class _Connection:
    def __init__(self, credential: Credential, record: sessions.SessionRecord, send: Send) -> None:
        self.credential = credential
        self.record = record
        self.send = send
        self.closed: asyncio.Event = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    async def write(self, message: dict[str, Any]) -> None:
        if not self.closed.is_set():
            await self.send({"type": "websocket.send", "text": json.dumps(message, separators=(",", ":"))})

    async def close(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.closed.set()
            await self.send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    async def run(self, receive: Receive) -> None:
        async with Subscription(self.record.id, self.credential.workspace_id) as subscription:
            notifications = asyncio.get_running_loop().create_task(self._notifications(subscription))
            try:
                while not self.closed.is_set():
                    event = await receive()
                    if event["type"] == "websocket.disconnect":
                        break
                    text = event.get("text")
                    if text is not None and len(text) > settings.MCP_MAX_BODY_BYTES:
                        await self.close(CLOSE_TOO_BIG, f"Frames are at most {settings.MCP_MAX_BODY_BYTES:,} bytes.")
                        break
                    if text is None:
                        await self.write(
                            rpc_error(
                                None,
                                types.ErrorData(code=types.INVALID_REQUEST, message="Send JSON-RPC as text frames."),
                            )
                        )
                        continue
                    await self._frame(text)
            finally:
                self.closed.set()
                notifications.cancel()
                for task in self.tasks:
                    task.cancel()

    async def _frame(self, text: str) -> None:
        try:
            message = pipeline.message_decode(text)
        except HttpError as error:
            await self.write(
                rpc_error(None, types.ErrorData(code=error.rpc or types.PARSE_ERROR, message=error.message))
            )
            return
        if "id" not in message or "method" not in message:
            try:
                self.credential = await pipeline.client_message(self.credential, self.record, message)
            except pipeline.REFUSALS as error:
                await self._refused(None, error)
            return
        exchange = Exchange.in_session(self.credential, "websocket", message, self.record, emit=self.write)
        if message["method"] == "initialize":
            await self._serve(exchange)  # inline: the next frame is read once the session knows its peer
            return
        if len(self.tasks) >= MAX_IN_FLIGHT:
            busy = types.ErrorData(code=types.INVALID_REQUEST, message=f"At most {MAX_IN_FLIGHT} requests at once.")
            await self.write(rpc_error(exchange.request_id, busy))
            return
        task = asyncio.get_running_loop().create_task(self._serve(exchange))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, exchange: Exchange) -> None:
        try:
            response = await pipeline.serve(exchange)
        except pipeline.REFUSALS as error:
            await self._refused(exchange.request_id, error)
            return
        self.credential = exchange.credential
        if response is not None:
            await self.write(response)

    async def _refused(self, request_id: Any, error: Exception) -> None:
        if isinstance(error, InvalidApiKey):
            await self.close(CLOSE_UNAUTHENTICATED, error.message)
        elif isinstance(error, RateLimited):
            if request_id is not None:
                await self.write(rpc_error(request_id, limit_error(error).error))
        elif isinstance(error, AdmissionUnavailable):
            await self.close(CLOSE_UNAVAILABLE, error.message)
        elif isinstance(error, SessionGone):
            await self.close(CLOSE_TOO_MANY, SESSION_ENDED)

    async def _notifications(self, subscription: Subscription) -> None:
        while True:
            message = await subscription.next(3600)
            if message is _CLOSE:
                await self.close(CLOSE_TOO_MANY, SESSION_ENDED)
                return
            if isinstance(message, dict):
                await self.write(message)
