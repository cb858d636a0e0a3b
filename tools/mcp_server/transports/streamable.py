"""`/mcp`: Streamable HTTP, every revision from 2025-03-26 to 2026-07-28 on one endpoint.

- 2026-07-28 (an `MCP-Protocol-Version` header naming a modern revision): every POST is self-contained, its
  `_meta` envelope checked by the SDK's ladder (`classify_inbound_request`, routing and `Mcp-Param-*` headers).
- Handshake era: `initialize` opens a session (`Mcp-Session-Id`) bound to the key that opened it; later POSTs carry
  the id and may reach any replica. `GET` opens the session's notification stream, `DELETE` closes the session.

Either way a request is answered as JSON when its response is the only thing the server sends, else as an SSE
stream (progress, log messages and server requests first, the response last), which starts with the first message
the request emits. A long request's client closing the connection cancels it; in a session, so does
`notifications/cancelled`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import mcp_types as types
from mcp.shared.inbound import (
    X_MCP_HEADER_KEY,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    unsupported_protocol_version_rejection,
    validate_mcp_param_headers,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from monitoring.metrics import session_open
from tools.mcp_server import pipeline, sessions
from tools.mcp_server.pipeline.admission import admit
from tools.mcp_server.pipeline.auth import Credential, tools_visible
from tools.mcp_server.pipeline.errors import HttpError, envelope_error, rpc_error_status
from tools.mcp_server.pipeline.exchange import Exchange
from tools.mcp_server.transports.event_stream import event_stream
from tools.mcp_server.transports.http import (
    Receive,
    Send,
    body_read,
    credential_of,
    dumps,
    headers_of,
    origin_check,
    refusal,
    respond,
    respond_error,
)
from tools.models import Tool

SESSION_HEADER = "mcp-session-id"
WATCH_AFTER_SECONDS = 0.5  # a request still running by then gets a watcher for its client going away
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]


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
        if modern:
            await _modern(scope, headers, receive, send)
        elif method == "POST":
            await _post(scope, headers, receive, send)
        elif method == "GET":
            await _get(scope, headers, receive, send)
        else:
            credential = await credential_of(scope, headers)
            record = await _session(scope, headers, credential)
            await sessions.session_delete(record)
            await respond(send, 200, b"")
    except HttpError as error:
        await respond_error(send, error)
    except pipeline.REFUSALS as error:  # (Redis unreachable while reading a session)
        await respond_error(send, refusal(scope, headers, error))


def _accepts(headers: dict[str, str]) -> tuple[bool, bool]:
    accept = headers.get("accept", "")
    return ("application/json" in accept or "*/*" in accept), ("text/event-stream" in accept or "*/*" in accept)


# --- 2026-07-28 --------------------------------------------------------------------------------------------------


async def _modern(scope: dict[str, Any], headers: dict[str, str], receive: Receive, send: Send) -> None:
    if scope["method"] != "POST":
        raise HttpError(405, "method_not_allowed", "Send 2026-07-28 requests with POST.", headers={"Allow": "POST"})
    json_ok, sse_ok = _accepts(headers)
    if not json_ok:
        raise HttpError(406, "not_acceptable", "Not Acceptable: the client must accept application/json.")
    body = await body_read(receive)
    credential = await credential_of(scope, headers)
    message = pipeline.message_decode(body)
    if "id" not in message:  # a notification: nothing at this revision acts on one over HTTP; acknowledged
        rejection = unsupported_protocol_version_rejection(headers.get("mcp-protocol-version", ""))
        if rejection is not None:
            raise envelope_error(400, rejection.code, rejection.message, data=rejection.data)
        await _admitted(scope, headers, credential)
        await respond(send, 202, b"")
        return
    if "method" not in message:
        raise envelope_error(
            400, types.INVALID_REQUEST, "Body must be a single JSON-RPC request or notification object"
        )
    request_id = message["id"]
    raw_headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", [])]
    duplicated = find_duplicated_routing_header(raw_headers)
    if duplicated is not None:
        rejection = InboundLadderRejection(
            code=types.HEADER_MISMATCH, message=f"{duplicated} header appears more than once"
        )
        raise _rejected(rejection, request_id)
    verdict = classify_inbound_request(message, headers=headers)
    if isinstance(verdict, InboundLadderRejection):
        raise _rejected(verdict, request_id)
    params = message.get("params")
    if message["method"] == "tools/call":
        rejection = await _param_headers_rejection(credential, params, headers)
        if rejection is not None:
            raise _rejected(rejection, request_id)
    capabilities = verdict.client_capabilities if isinstance(verdict.client_capabilities, dict) else {}
    exchange = Exchange(
        credential=credential,
        transport="streamable-http",
        request_id=request_id,
        method=message["method"],
        params=params,
        version=verdict.protocol_version,
        client_capabilities=capabilities,
    )
    await _answer(scope, headers, receive, send, exchange, sse_ok=sse_ok, session_id=None)


def _rejected(rejection: InboundLadderRejection, request_id: Any) -> HttpError:
    status = rpc_error_status({"error": {"code": rejection.code}})
    return envelope_error(
        status if status != 200 else 400, rejection.code, rejection.message, request_id=request_id, data=rejection.data
    )


async def _param_headers_rejection(
    credential: Credential, params: Any, headers: dict[str, str]
) -> InboundLadderRejection | None:
    """`Mcp-Param-*` headers must agree with the arguments the tool's schema marks for them."""
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return None
    arguments = params.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        return None
    if not arguments and not any(name.startswith("mcp-param-") for name in headers):
        return None
    tool = (await tools_visible(credential)).get(params["name"])
    if tool is None or not _declares_headers(tool):
        return None  # dispatch answers an unknown tool; a schema without `x-mcp-header` validates no header
    return validate_mcp_param_headers(tool.input_schema, arguments or {}, headers)


_declaring: dict[tuple[Any, Any], bool] = {}


def _declares_headers(tool: Tool) -> bool:
    """Whether the tool's schema annotates any argument with `x-mcp-header` (once per version of the tool)."""
    key = (tool.pk, tool.updated_at)
    declared = _declaring.get(key)
    if declared is None:
        if len(_declaring) > 4096:
            _declaring.clear()
        declared = _declaring[key] = X_MCP_HEADER_KEY in json.dumps(tool.input_schema)
    return declared


async def _admitted(scope: dict[str, Any], headers: dict[str, str], credential: Credential) -> Credential:
    try:
        return await admit(credential)
    except pipeline.REFUSALS as error:
        raise refusal(scope, headers, error) from error


# --- the handshake era -------------------------------------------------------------------------------------------


async def _session(scope: dict[str, Any], headers: dict[str, str], credential: Credential) -> sessions.SessionRecord:
    """The request's session. A request without one is still admitted before it is refused, so a revoked key hears
    401 (not 400 or 404) and the refusal counts against the key's rate."""
    session_id = headers.get(SESSION_HEADER)
    try:
        if not session_id:
            raise HttpError(400, "missing_session", "Missing Mcp-Session-Id header: send initialize first.")
        return await session_of(credential, session_id)
    except HttpError:
        await _admitted(scope, headers, credential)
        raise


async def session_of(credential: Credential, session_id: str, transport: str | None = None) -> sessions.SessionRecord:
    """The caller's session. An unknown, expired, closed or evicted session and one another key opened get the same
    404: a key learns nothing about sessions that are not its own."""
    record = await sessions.session_get(session_id, recent=True)
    if (
        record is None
        or record.key_id != str(credential.key_id)
        or record.workspace_id != str(credential.workspace_id)
        or (transport is not None and record.transport != transport)
    ):
        raise HttpError(404, "session_not_found", "Session not found: it expired or was closed. Initialize again.")
    return record


async def _post(scope: dict[str, Any], headers: dict[str, str], receive: Receive, send: Send) -> None:
    json_ok, sse_ok = _accepts(headers)
    if not (json_ok and sse_ok):
        raise HttpError(
            406, "not_acceptable", "Not Acceptable: the client must accept both application/json and text/event-stream."
        )
    if not headers.get("content-type", "").startswith("application/json"):
        raise HttpError(415, "unsupported_media_type", "Unsupported Media Type: send Content-Type: application/json.")
    body = await body_read(receive)
    credential = await credential_of(scope, headers)
    message = pipeline.message_decode(body)
    if message.get("method") == "initialize" and "id" in message:
        await _initialize(scope, headers, credential, message, send)
        return
    record = await _session(scope, headers, credential)
    version = headers.get("mcp-protocol-version")
    if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise HttpError(400, "unsupported_version", f"Unsupported MCP-Protocol-Version: {version}.")
    if "id" not in message or "method" not in message:  # a notification, or a reply to a server request
        try:
            await pipeline.client_message(credential, record, message)
        except pipeline.REFUSALS as error:
            raise refusal(scope, headers, error) from error
        await respond(send, 202, b"")
        return
    exchange = Exchange.in_session(credential, "streamable-http", message, record, version=version or "2025-03-26")
    await _answer(scope, headers, receive, send, exchange, sse_ok=True, session_id=record.id)


async def _initialize(
    scope: dict[str, Any], headers: dict[str, str], credential: Credential, message: dict[str, Any], send: Send
) -> None:
    exchange = Exchange(
        credential=credential,
        transport="streamable-http",
        request_id=message["id"],
        method="initialize",
        params=message.get("params"),
        version="2025-03-26",
    )
    try:
        response = await pipeline.dispatch(exchange)
    except pipeline.REFUSALS as error:
        raise refusal(scope, headers, error) from error
    negotiated = exchange.negotiated
    if "error" in response or negotiated is None:
        await respond(send, 200, dumps(response))
        return
    # Only now, admitted and answered: a refused initialize evicts none of the key's sessions.
    credential = exchange.credential
    record = await sessions.session_create(
        key_id=credential.key_id,
        workspace_id=credential.workspace_id,
        transport="streamable-http",
        max_sessions=credential.policy.max_concurrent_sessions,
        peer=negotiated,
    )
    await respond(send, 200, dumps(response), headers={"Mcp-Session-Id": record.id})


async def _get(scope: dict[str, Any], headers: dict[str, str], receive: Receive, send: Send) -> None:
    _json_ok, sse_ok = _accepts(headers)
    if not sse_ok:
        raise HttpError(406, "not_acceptable", "Not Acceptable: the notification stream is text/event-stream.")
    credential = await credential_of(scope, headers)
    record = await _session(scope, headers, credential)
    await _admitted(scope, headers, credential)
    with session_open("streamable-http"):  # a handshake-era session counts as active while its stream is open
        await event_stream(
            send,
            receive,
            session_id=record.id,
            workspace_id=credential.workspace_id,
            headers={"Mcp-Session-Id": record.id},
        )


# --- answering a request -----------------------------------------------------------------------------------------


async def _answer(
    scope: dict[str, Any],
    headers: dict[str, str],
    receive: Receive,
    send: Send,
    exchange: Exchange,
    *,
    sse_ok: bool,
    session_id: str | None,
) -> None:
    """Serve the request on this task: JSON if the response is all there is, else an SSE stream that starts with
    the first message the request emits and ends with the response."""
    extra = [(b"mcp-session-id", session_id.encode())] if session_id else []
    streaming = False

    async def emit(outgoing: dict[str, Any]) -> None:
        nonlocal streaming
        if not streaming:
            streaming = True
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + extra})
        await send({"type": "http.response.body", "body": _event(outgoing), "more_body": True})

    exchange.emit = emit if sse_ok else None
    loop = asyncio.get_running_loop()
    watcher: list[asyncio.Task[None]] = []
    timer = loop.call_later(WATCH_AFTER_SECONDS, lambda: watcher.append(loop.create_task(_watch(receive, exchange))))
    response: dict[str, Any] | None = None
    try:
        response = await pipeline.serve(exchange)
    except pipeline.REFUSALS as error:
        if not streaming:
            raise refusal(scope, headers, error) from error
        response = None
    finally:
        timer.cancel()
        for task in watcher:
            task.cancel()
    if streaming:
        if response is not None:
            await send({"type": "http.response.body", "body": _event(response), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif response is None:  # cancelled before any answer: end the request without one
        await respond(send, 202, b"")
    else:
        status = rpc_error_status(response) if exchange.session is None else 200
        body = dumps(response)
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": response_headers + extra})
        await send({"type": "http.response.body", "body": body})


async def _watch(receive: Receive, exchange: Exchange) -> None:
    """A long request's client went away: stop its work (on 2026-07-28 that is how a client cancels)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    exchange.cancel()


def _event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + dumps(message) + b"\n\n"
