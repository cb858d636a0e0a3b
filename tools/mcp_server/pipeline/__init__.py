"""The one pipeline every MCP message goes through, whatever its transport and protocol era:

    frame in (a transport) → `message_decode`: the JSON-RPC envelope, checked with the SDK's `mcp_types`
    → `auth.authenticate`: the credential → its workspace, scopes and plan, from the process cache
    → the session, where the transport has one (`tools.mcp_server.sessions`)
    → admission, in one round trip (`billing.admission.usage_admit`, through `pipeline.admission.admit`):
      access epoch, the key's rate, the quota of what the message costs, the usage entry, the session touch
    → `dispatch`: the method's handler (`tools.mcp_server.handlers`), its result shaped for the wire as the SDK
      does (per-version result surface, `resultType` and the server-info stamp at 2026-07-28)
    → emit: the transport writes the response (JSON, an SSE event, a WebSocket frame).

The SDK's validation (params and results per protocol version, the 2026-07-28 envelope ladder) is used as is; its
per-connection machinery (dispatcher, connection, task groups) is not, because it costs ~7 ms per message when rebuilt
for every exchange of a session that any replica may serve (docs/architecture.md).

Errors that refuse the message itself escape `dispatch` for the transport to answer as its protocol says:
InvalidApiKey (401 / WebSocket close 4401), RateLimited (429 with Retry-After), AdmissionUnavailable (503),
SessionGone (404 / the socket or stream closes).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import methods as spec_methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError

from accounts.errors import InvalidApiKey
from billing.admission import AdmissionUnavailable, RateLimited
from tools.mcp_server.handlers import HANDLERS
from tools.mcp_server.handlers.lifecycle import SERVER_INFO
from tools.mcp_server.pipeline.admission import SessionGone, admit
from tools.mcp_server.pipeline.auth import Credential
from tools.mcp_server.pipeline.errors import envelope_error, error_data, rpc_error
from tools.mcp_server.pipeline.exchange import Exchange, client_message_route, router_get
from tools.mcp_server.sessions import SessionRecord, session_update

__all__ = ["Exchange", "client_message", "dispatch", "message_decode", "serve"]

# Errors about the message itself: the transport answers them (HTTP status, WebSocket close), not a JSON-RPC result.
REFUSALS = (InvalidApiKey, RateLimited, AdmissionUnavailable, SessionGone)
_EXCLUDED_FROM_INIT_GATE = frozenset({"initialize", "ping"})


def message_decode(raw: bytes | str) -> dict[str, Any]:
    """One JSON-RPC message as a dict, checked against the SDK's envelope models; HttpError (400, with a JSON-RPC
    error body) for anything else."""
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise envelope_error(400, types.PARSE_ERROR, "Parse error: the body is not JSON.") from error
    if isinstance(decoded, list):
        raise envelope_error(400, types.INVALID_REQUEST, "Batches are not supported: send one JSON-RPC message.")
    try:
        types.jsonrpc_message_adapter.validate_python(decoded, by_name=False)
    except ValidationError as error:
        raise envelope_error(400, types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message.") from error
    return decoded


async def serve(exchange: Exchange) -> dict[str, Any] | None:
    """Serve a request on this task, cancellable by its client: `notifications/cancelled` finds it (in a session) and
    None comes back (no response goes out). After `initialize` in a session, the session keeps the negotiated peer.
    Raises the REFUSALS for the transport to answer."""
    exchange.task = task = asyncio.current_task()
    session = exchange.session
    router = await router_get() if session is not None else None
    if router is not None and session is not None:
        router.track(session.id, exchange)
    try:
        response = await dispatch(exchange)
    except asyncio.CancelledError:
        if not exchange.cancelled or task is None:
            raise
        task.uncancel()  # the client's cancellation ends this request, not the task that served it
        return None
    finally:
        if router is not None and session is not None:
            router.untrack(session.id, exchange)
    if session is not None and exchange.negotiated is not None and "result" in response:
        session.peer = asdict(exchange.negotiated)
        await session_update(session.id, peer=exchange.negotiated)
    return response


async def dispatch(exchange: Exchange) -> dict[str, Any]:
    """Serve a request: admit it, run its handler, and return the response message (a result or a JSON-RPC error).
    Raises the REFUSALS for the transport to answer."""
    method, params, version = exchange.method, exchange.params, exchange.version
    handler = HANDLERS.get(method)
    admitted = not (handler and handler.admits)  # else the handler admits, once it knows what the message costs
    try:
        if admitted:
            exchange.credential = await admit(exchange.credential, exchange.session)
        if method in spec_methods.SPEC_CLIENT_METHODS:
            try:
                spec_methods.validate_client_request(method, version, params)
            except KeyError:
                handler = None  # not a method of this protocol version
        if handler is None:
            raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found", data=method)
        session = exchange.session
        if session is not None and session.peer is None and method not in _EXCLUDED_FROM_INIT_GATE:
            raise MCPError(code=types.INVALID_REQUEST, message="Send initialize first: this session has not started.")
        typed = handler.params.model_validate({} if params is None else params, by_name=False)
        admitted = True
        result = await handler.function(exchange, typed)
        return {"jsonrpc": "2.0", "id": exchange.request_id, "result": result_shape(method, exchange.version, result)}
    except REFUSALS:
        raise
    except Exception as error:
        if not admitted:  # refused before its handler could admit it: it still counts, and a revoked key hears so
            exchange.credential = await admit(exchange.credential, exchange.session)
        return rpc_error(exchange.request_id, error_data(error))


def result_shape(method: str, version: str, result: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The result as the spec's surface for this version allows it, with the 2026-07-28 envelope fields."""
    dumped = (
        result.model_dump(by_alias=True, mode="json", exclude_none=True)
        if isinstance(result, BaseModel)
        else dict(result)
    )
    if method in spec_methods.SPEC_CLIENT_METHODS:
        try:
            dumped = spec_methods.serialize_server_result(method, version, _with_result_type(dumped, version))
        except ValidationError as error:
            raise MCPError(code=types.INTERNAL_ERROR, message="The server produced an invalid result.") from error
    if version in MODERN_PROTOCOL_VERSIONS:
        dumped.setdefault("resultType", "complete")
        meta = dumped.get("_meta")
        dumped["_meta"] = {**(meta if isinstance(meta, dict) else {}), types.SERVER_INFO_META_KEY: dict(SERVER_INFO)}
    return dumped


def _with_result_type(dumped: dict[str, Any], version: str) -> dict[str, Any]:
    if version in MODERN_PROTOCOL_VERSIONS and "resultType" not in dumped:
        dumped["resultType"] = "complete"
    return dumped


async def client_message(credential: Credential, session: SessionRecord, message: dict[str, Any]) -> Credential:
    """A client's notification or response in a session: admitted like any message, then delivered where it is
    awaited (a server request's exchange, a request to cancel)."""
    credential = await admit(credential, session)
    await client_message_route(session.id, message)
    return credential
