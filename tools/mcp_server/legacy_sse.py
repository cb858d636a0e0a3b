"""The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens the session's stream and names, in its first event,
where to post (`/messages?session_id=…`); every answer travels back on that stream.

The stream may be held by one replica while the POSTs reach another: the replica that receives a POST serves the
exchange and sends each message it produces to the session's channel-layer group, which the stream's replica writes
out. POSTs are answered `202 Accepted` at once, so a client that waits for them before posting its reply to a
server request (sampling) does not deadlock.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import mcp_types as types
from channels.layers import get_channel_layer

from core.errors import LimitReached
from monitoring.metrics import session_open
from tools.mcp_server import sessions
from tools.mcp_server.caller import Caller, caller_reset, caller_set
from tools.mcp_server.core import Exchange, Peer, exchange_run
from tools.mcp_server.runtime import runtime
from tools.mcp_server.streams import event_stream
from tools.mcp_server.transport import (
    ALL_GROUP,
    NOTIFY_EVENT,
    HttpError,
    Inbox,
    Receive,
    Send,
    authenticate,
    body_read,
    headers_of,
    limit_http_error,
    message_parse,
    origin_check,
    reply_route,
    respond,
    respond_error,
    session_group,
    session_of,
    workspace_group,
)

_background: set[asyncio.Task[Any]] = set()


async def sse_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    headers = headers_of(scope)
    try:
        origin_check(headers)
        if scope["method"] != "GET":
            raise HttpError(405, "method_not_allowed", "Open the stream with GET.", headers={"Allow": "GET"})
        auth = await authenticate(scope, headers, "sse")
        try:
            record = await sessions.session_create(
                key_id=auth.key_id,
                workspace_id=auth.caller.workspace_id,
                transport="sse",
                max_sessions=auth.max_sessions,
            )
        except LimitReached as error:
            raise limit_http_error(error) from error
    except HttpError as error:
        await respond_error(send, error)
        return
    root = scope.get("root_path", "")
    endpoint = f"event: endpoint\ndata: {root}/messages?session_id={record.id}\n\n".encode()
    groups = (session_group(record.id), workspace_group(auth.caller.workspace_id), ALL_GROUP)

    async def closed() -> None:
        await sessions.session_delete(record)

    with session_open("sse"):
        await event_stream(send, receive, groups=groups, session_id=record.id, first_event=endpoint, on_close=closed)


async def messages_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    headers = headers_of(scope)
    try:
        origin_check(headers)
        if scope["method"] != "POST":
            raise HttpError(405, "method_not_allowed", "Post messages here.", headers={"Allow": "POST"})
        auth = await authenticate(scope, headers, "sse")
        query = parse_qs(scope.get("query_string", b"").decode())
        session_id = (query.get("session_id") or query.get("sessionId") or [""])[0]
        if not session_id:
            raise HttpError(400, "missing_session", "Missing session_id: open the stream at /sse first.")
        caller: Caller = auth.caller
        record = await session_of(caller, session_id, transport="sse")
        message = message_parse(await body_read(receive))
    except HttpError as error:
        await respond_error(send, error)
        return
    if not isinstance(message, types.JSONRPCRequest):
        await reply_route(record.id, message)
        await respond(send, 202, b"Accepted", content_type="text/plain")
        return
    await respond(send, 202, b"Accepted", content_type="text/plain")
    token = caller_set(caller)
    try:
        task = asyncio.create_task(_serve(caller, record, message))
    finally:
        caller_reset(token)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _serve(caller: Caller, record: sessions.SessionRecord, message: types.JSONRPCRequest) -> None:
    layer = get_channel_layer()
    group = session_group(record.id)

    async def emit(outgoing: types.JSONRPCMessage) -> None:
        if layer is not None:
            payload = outgoing.model_dump(by_alias=True, exclude_unset=True, mode="json")
            await layer.group_send(group, {"type": NOTIFY_EVENT, "message": payload})

    state = await runtime()
    inbox = Inbox(record.id)
    address = await inbox.open()
    initializing = message.method == "initialize"
    peer = None if initializing else (record.peer_state or Peer(protocol_version="2024-11-05"))
    if address:
        await sessions.inflight_set(record.id, message.id, address)

    async def initialized(negotiated: Peer) -> None:
        await sessions.session_update(record.id, peer=negotiated)

    try:
        await exchange_run(
            state.server,
            state.lifespan_state,
            Exchange(message, emit, transport="sse", reply_address=address, on_initialized=initialized),
            peer=peer,
            inbox=inbox.receive_stream,
        )
    finally:
        inbox.close()
        if address:
            await sessions.inflight_delete(record.id, message.id)
