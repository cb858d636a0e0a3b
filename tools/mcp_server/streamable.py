"""`/mcp`: Streamable HTTP, every revision from 2025-03-26 to 2026-07-28 on one endpoint.

- 2026-07-28 clients (an `MCP-Protocol-Version` header naming a modern revision) are stateless: the SDK's own
  single-exchange entry serves them, with our caller set.
- Handshake-era clients: `initialize` opens a session (`Mcp-Session-Id`), bound to the key that opened it; later
  POSTs carry the id and may reach any replica. A request is answered as JSON when its response is the only thing
  the server sends, else as an SSE stream (progress, log messages and server requests first, the response last).
  `GET` opens the session's notification stream, `DELETE` closes the session.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server._streamable_http_modern import handle_modern_request
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from core.errors import LimitReached
from monitoring.metrics import session_open
from tools.mcp_server import fastpath, sessions
from tools.mcp_server.caller import Caller, caller_reset, caller_set
from tools.mcp_server.core import Exchange, Peer, exchange_run
from tools.mcp_server.runtime import runtime
from tools.mcp_server.streams import event_stream
from tools.mcp_server.transport import (
    ALL_GROUP,
    HttpError,
    Inbox,
    Receive,
    Send,
    authenticate,
    body_read,
    headers_of,
    limit_http_error,
    message_bytes,
    message_parse,
    origin_check,
    reply_route,
    respond,
    respond_error,
    session_group,
    session_of,
    workspace_group,
)

SESSION_HEADER = "mcp-session-id"


async def streamable_http_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    headers = headers_of(scope)
    try:
        origin_check(headers)
        method = scope["method"]
        if method not in ("POST", "GET", "DELETE"):
            raise HttpError(
                405, "method_not_allowed", "Use POST, GET or DELETE.", headers={"Allow": "GET, POST, DELETE"}
            )
        version = headers.get("mcp-protocol-version")
        modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
        body: bytes | None = None
        if modern and method == "POST" and fastpath.enabled():
            body = await body_read(receive)
            if await fastpath.fast_tool_call(scope, headers, body, send):
                return
        auth = await authenticate(scope, headers, "streamable-http")
        if modern:
            await _modern(auth.caller, scope, receive, send, body)
        elif method == "POST":
            await _post(auth, headers, receive, send)
        elif method == "GET":
            await _get(auth.caller, headers, receive, send)
        else:
            record = await _session(auth.caller, headers)
            await sessions.session_delete(record)
            await respond(send, 200, b"")
    except HttpError as error:
        await respond_error(send, error)


async def _modern(
    caller: Caller, scope: dict[str, Any], receive: Receive, send: Send, body: bytes | None = None
) -> None:
    """A stateless 2026-07-28 request: the SDK's single-exchange entry, over a body we already bounded."""
    if body is None:
        body = await body_read(receive) if scope["method"] == "POST" else b""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    state = await runtime()
    token = caller_set(caller)
    try:
        await handle_modern_request(state.server, None, False, state.lifespan_state, scope, replay, send)  # type: ignore[arg-type]
    finally:
        caller_reset(token)


async def _session(caller: Caller, headers: dict[str, str]) -> sessions.SessionRecord:
    session_id = headers.get(SESSION_HEADER)
    if not session_id:
        raise HttpError(400, "missing_session", "Missing Mcp-Session-Id header: send initialize first.")
    return await session_of(caller, session_id)


def _accepts(headers: dict[str, str]) -> tuple[bool, bool]:
    accept = headers.get("accept", "")
    return ("application/json" in accept or "*/*" in accept), ("text/event-stream" in accept or "*/*" in accept)


async def _post(auth: Any, headers: dict[str, str], receive: Receive, send: Send) -> None:
    json_ok, sse_ok = _accepts(headers)
    if not (json_ok and sse_ok):
        raise HttpError(
            406, "not_acceptable", "Not Acceptable: the client must accept both application/json and text/event-stream."
        )
    if not headers.get("content-type", "").startswith("application/json"):
        raise HttpError(415, "unsupported_media_type", "Unsupported Media Type: send Content-Type: application/json.")
    message = message_parse(await body_read(receive))
    caller: Caller = auth.caller
    if isinstance(message, types.JSONRPCRequest) and message.method == "initialize":
        await _initialize(auth, message, send)
        return
    record = await _session(caller, headers)
    version = headers.get("mcp-protocol-version")
    if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise HttpError(400, "unsupported_version", f"Unsupported MCP-Protocol-Version: {version}.")
    if not isinstance(message, types.JSONRPCRequest):
        await reply_route(record.id, message)
        await respond(send, 202, b"")
        return
    peer = record.peer_state or Peer(protocol_version=version or "2025-03-26")
    await _serve_request(caller, record.id, peer, message, receive, send)


async def _initialize(auth: Any, message: types.JSONRPCRequest, send: Send) -> None:
    caller: Caller = auth.caller
    try:
        record = await sessions.session_create(
            key_id=auth.key_id,
            workspace_id=caller.workspace_id,
            transport="streamable-http",
            max_sessions=auth.max_sessions,
        )
    except LimitReached as error:
        raise limit_http_error(error) from error
    caller.session_id = record.id
    state = await runtime()
    answers: list[types.JSONRPCMessage] = []

    async def emit(outgoing: types.JSONRPCMessage) -> None:
        answers.append(outgoing)

    async def initialized(peer: Peer) -> None:
        await sessions.session_update(record.id, peer=peer)

    token = caller_set(caller)
    try:
        peer = await exchange_run(
            state.server, state.lifespan_state, Exchange(message, emit, on_initialized=initialized), peer=None
        )
    finally:
        caller_reset(token)
    if peer is None:
        await sessions.session_delete(record)
        await respond(send, 200, message_bytes(answers[-1]))
        return
    await respond(send, 200, message_bytes(answers[-1]), headers={"Mcp-Session-Id": record.id})


async def _serve_request(
    caller: Caller, session_id: str, peer: Peer, message: types.JSONRPCRequest, receive: Receive, send: Send
) -> None:
    """Answer one request: JSON if the response is all there is, else an SSE stream that ends with the response."""
    state = await runtime()
    out_send, out_receive = anyio.create_memory_object_stream[types.JSONRPCMessage | None](32)
    inbox = Inbox(session_id) if message.method == "tools/call" else None
    address = await inbox.open() if inbox else None

    async def emit(outgoing: types.JSONRPCMessage) -> None:
        await out_send.send(outgoing)

    async def run_exchange() -> None:
        token = caller_set(caller)
        try:
            await exchange_run(
                state.server,
                state.lifespan_state,
                Exchange(message, emit, reply_address=address),
                peer=peer,
                inbox=inbox.receive_stream if inbox else None,
            )
        finally:
            caller_reset(token)
            await out_send.send(None)

    async def watch_disconnect(scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    if inbox and address:
        await sessions.inflight_set(session_id, message.id, address)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(run_exchange)
            group.start_soon(watch_disconnect, group.cancel_scope)
            first = await out_receive.receive()
            if first is None:  # cancelled by the client before any answer: end the request without one
                await respond(send, 202, b"")
            elif _is_final(first, message.id):
                await respond(send, 200, message_bytes(first), headers={"Mcp-Session-Id": session_id})
            else:
                await _sse_answer(send, session_id, first, out_receive, message.id)
            group.cancel_scope.cancel()
    finally:
        if inbox:
            inbox.close()
        if inbox and address:
            with anyio.CancelScope(shield=True):
                await sessions.inflight_delete(session_id, message.id)


def _is_final(message: types.JSONRPCMessage, request_id: Any) -> bool:
    return isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id == request_id


async def _sse_answer(send: Send, session_id: str, first: types.JSONRPCMessage, rest: Any, request_id: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-store"),
                (b"mcp-session-id", session_id.encode()),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    outgoing: types.JSONRPCMessage | None = first
    while outgoing is not None:
        await send({"type": "http.response.body", "body": _event(outgoing), "more_body": True})
        if _is_final(outgoing, request_id):
            break
        outgoing = await rest.receive()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _event(message: types.JSONRPCMessage) -> bytes:
    return b"event: message\ndata: " + message_bytes(message) + b"\n\n"


async def _get(caller: Caller, headers: dict[str, str], receive: Receive, send: Send) -> None:
    _json_ok, sse_ok = _accepts(headers)
    if not sse_ok:
        raise HttpError(406, "not_acceptable", "Not Acceptable: the notification stream is text/event-stream.")
    record = await _session(caller, headers)
    groups = (session_group(record.id), workspace_group(caller.workspace_id), ALL_GROUP)
    with session_open("streamable-http"):  # a handshake-era session counts as active while its stream is open
        await event_stream(send, receive, groups=groups, session_id=record.id, headers={"Mcp-Session-Id": record.id})
