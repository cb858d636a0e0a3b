"""The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens the session's stream and names, in its first event,
where to post (`/messages?session_id=…`); every answer travels back on that stream.

POSTs are answered `202 Accepted` as soon as the message is read and its credential checked (so a client that waits
for them before posting its reply to a server request does not deadlock); the message is then served, and what it
produces goes to the session's stream: straight into it when the stream is open in this process, else through the
channel layer to the replica that holds it. A message refused on admission (rate, a key revoked meanwhile) is
answered on the stream as a JSON-RPC error; a revoked key's stream is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import mcp_types as types

from accounts.errors import InvalidApiKey
from billing.admission import AdmissionUnavailable, RateLimited
from monitoring.metrics import session_open
from tools.mcp_server import pipeline, sessions
from tools.mcp_server.pipeline.admission import SessionGone
from tools.mcp_server.pipeline.auth import Credential
from tools.mcp_server.pipeline.errors import HttpError, error_data, limit_error, rpc_error
from tools.mcp_server.pipeline.exchange import Exchange
from tools.mcp_server.transports.event_stream import event_stream, stream_close, stream_deliver
from tools.mcp_server.transports.http import (
    Receive,
    Send,
    body_read,
    credential_of,
    headers_of,
    origin_check,
    refusal,
    respond,
    respond_error,
    session_start,
)
from tools.mcp_server.transports.streamable import _admitted, session_of

_background: set[asyncio.Task[Any]] = set()


async def sse_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    headers = headers_of(scope)
    try:
        origin_check(headers)
        if scope["method"] != "GET":
            raise HttpError(405, "method_not_allowed", "Open the stream with GET.", headers={"Allow": "GET"})
        credential, record = await session_start(scope, headers, await credential_of(scope, headers), "sse")
    except HttpError as error:
        await respond_error(send, error)
        return
    except pipeline.REFUSALS as error:
        await respond_error(send, refusal(scope, headers, error))
        return
    root = scope.get("root_path", "")
    endpoint = f"event: endpoint\ndata: {root}/messages?session_id={record.id}\n\n".encode()

    async def closed() -> None:
        await sessions.session_delete(record)

    with session_open("sse"):
        await event_stream(
            send,
            receive,
            session_id=record.id,
            workspace_id=credential.workspace_id,
            first_event=endpoint,
            on_close=closed,
        )


async def messages_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    headers = headers_of(scope)
    try:
        origin_check(headers)
        if scope["method"] != "POST":
            raise HttpError(405, "method_not_allowed", "Post messages here.", headers={"Allow": "POST"})
        credential = await credential_of(scope, headers)
        query = parse_qs(scope.get("query_string", b"").decode())
        session_id = (query.get("session_id") or query.get("sessionId") or [""])[0]
        if not session_id:
            raise HttpError(400, "missing_session", "Missing session_id: open the stream at /sse first.")
        try:
            record = await session_of(credential, session_id, transport="sse")
        except HttpError:
            await _admitted(scope, headers, credential)  # a revoked key hears 401, and the refusal counts
            raise
        message = pipeline.message_decode(await body_read(receive))
    except HttpError as error:
        await respond_error(send, error)
        return
    except pipeline.REFUSALS as error:  # (Redis unreachable while reading the session)
        await respond_error(send, refusal(scope, headers, error))
        return
    await respond(send, 202, b"Accepted", content_type="text/plain")
    task = asyncio.create_task(_serve(credential, record, message))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _serve(credential: Credential, record: sessions.SessionRecord, message: dict[str, Any]) -> None:
    async def emit(outgoing: dict[str, Any]) -> None:
        await stream_deliver(record.id, outgoing)

    try:
        if "id" not in message or "method" not in message:
            await pipeline.client_message(credential, record, message)
            return
        exchange = Exchange.in_session(credential, "sse", message, record, emit=emit, version="2024-11-05")
        response = await pipeline.serve(exchange)
        if response is not None:
            await emit(response)
    except pipeline.REFUSALS as error:
        await _refused(record, message, error)


async def _refused(record: sessions.SessionRecord, message: dict[str, Any], error: Exception) -> None:
    """A message refused on admission, told on the stream; a key revoked meanwhile also ends the stream."""
    if "id" in message and "method" in message:
        if isinstance(error, RateLimited):
            data = limit_error(error).error
        elif isinstance(error, InvalidApiKey | AdmissionUnavailable):
            data = types.ErrorData(code=types.INVALID_REQUEST, message=error.message)
        elif isinstance(error, SessionGone):
            data = types.ErrorData(code=types.INVALID_REQUEST, message="Session not found: open the stream again.")
        else:
            data = error_data(error)
        await stream_deliver(record.id, rpc_error(message["id"], data))
    if isinstance(error, InvalidApiKey | SessionGone):
        await sessions.session_delete(record)
        await stream_close(record.id)
