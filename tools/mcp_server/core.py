"""One protocol core for every transport: the official SDK's low-level `Server`, driven one exchange at a time.

An *exchange* is one message from the client and everything the server sends because of it: progress and log
notifications, server-to-client requests (sampling, elicitation) and, last, the response. Nothing of an exchange
outlives it in this process. What a session keeps between messages (the negotiated version, the client's info and
capabilities, the key it belongs to, its log level and subscriptions) lives in Redis (`tools.mcp_server.sessions`),
so the next message of a session can be served by any replica. A client's reply to a server-to-client request, and
a cancellation, reach the exchange that waits for them through an inbox the transport fills (from the channel layer
when the reply arrived at another replica).

Transports only frame messages: Streamable HTTP answers an exchange as JSON or as an SSE stream, the legacy SSE
transport forwards it to the stream that holds the session, WebSocket writes one frame per message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.runner import serve_connection
from mcp.shared._context_streams import create_context_streams
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.shared.transport_context import TransportContext

Emit = Callable[[types.JSONRPCMessage], Awaitable[None]]


@dataclass
class Peer:
    """What the server knows about the client after `initialize`; enough to rebuild the connection anywhere."""

    protocol_version: str
    client_info: dict[str, Any] | None = None
    client_capabilities: dict[str, Any] | None = None

    def connection(self) -> Connection:
        return Connection.from_envelope(self.protocol_version, self.client_info, self.client_capabilities)


@dataclass
class Exchange:
    """One client message in flight, and where its output goes.

    `reply_address` prefixes the ids of the server's own requests (sampling, elicitation): the transport that
    receives the client's reply reads the address back from the id and delivers the reply to this exchange, on
    whichever replica it runs."""

    message: types.JSONRPCMessage
    emit: Emit
    transport: str = "streamable-http"
    can_send_request: bool = True
    headers: Mapping[str, str] | None = None
    reply_address: str | None = None
    # For `initialize`: called with the negotiated peer before the response goes out, so the session is stored
    # by the time the client can send its next message.
    on_initialized: Callable[[Peer], Awaitable[None]] | None = None

    @property
    def request_id(self) -> types.RequestId | None:
        return self.message.id if isinstance(self.message, types.JSONRPCRequest) else None


async def exchange_run(
    server: Any,
    lifespan_state: Any,
    exchange: Exchange,
    *,
    peer: Peer | None,
    inbox: anyio.abc.ObjectReceiveStream[types.JSONRPCMessage] | None = None,
) -> Peer | None:
    """Serve one client message with the SDK server; emit every message it produces; return the negotiated peer
    when the message was `initialize` (for the caller to keep), else None.

    `peer` is None only for `initialize`; `inbox` delivers the client's replies to this exchange's server requests.
    Messages that belong to no request travel through the channel layer, not through the SDK's standalone channel.
    """
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](32)
    write_stream, write_reader = create_context_streams[SessionMessage](32)
    transport = TransportContext(
        kind=exchange.transport, can_send_request=exchange.can_send_request, headers=exchange.headers
    )
    dispatcher: JSONRPCDispatcher[TransportContext] = _AddressedDispatcher(
        exchange.reply_address,
        read_stream,
        write_stream,
        transport_builder=lambda _metadata: transport,
        inline_methods=frozenset({"initialize"}),
    )
    connection = Connection.for_loop(dispatcher) if peer is None else peer.connection()
    awaited = exchange.request_id
    if awaited is None:
        raise ValueError("An exchange serves a request; notifications and replies are routed by the transport.")
    unanswered = anyio.Event()

    async def on_unanswered() -> None:
        unanswered.set()

    async def relay_inbox() -> None:
        assert inbox is not None
        async for reply in inbox:
            await read_writer.send(SessionMessage(reply))

    async with anyio.create_task_group() as group:
        await group.start(lambda task_status: _serve(server, dispatcher, connection, lifespan_state, task_status))
        if inbox is not None:
            group.start_soon(relay_inbox)
        await read_writer.send(
            SessionMessage(exchange.message, metadata=ServerMessageMetadata(on_request_unanswered=on_unanswered))
        )
        group.start_soon(_wait_then_cancel, unanswered, group.cancel_scope)
        negotiated: Peer | None = None
        async for outgoing in write_reader:
            final = isinstance(outgoing.message, types.JSONRPCResponse | types.JSONRPCError) and (
                outgoing.message.id == awaited
            )
            if final and peer is None:
                negotiated = _negotiated(connection)
                if negotiated is not None and exchange.on_initialized is not None:
                    await exchange.on_initialized(negotiated)
            await exchange.emit(outgoing.message)
            if final:
                break
        group.cancel_scope.cancel()
    return negotiated


def _negotiated(connection: Connection) -> Peer | None:
    params = connection.client_params
    if params is None:
        return None
    return Peer(
        protocol_version=connection.protocol_version,
        client_info=params.client_info.model_dump(by_alias=True, exclude_none=True, mode="json"),
        client_capabilities=params.capabilities.model_dump(by_alias=True, exclude_none=True, mode="json"),
    )


class _AddressedDispatcher(JSONRPCDispatcher[TransportContext]):
    """Numbers the server's requests `<reply address>#<n>` so a reply finds its way back to this exchange."""

    def __init__(self, address: str | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address = address

    def _allocate_id(self) -> types.RequestId:  # type: ignore[override]
        number = super()._allocate_id()
        return f"{self._address}#{number}" if self._address else number


def reply_address_of(request_id: types.RequestId) -> str | None:
    """The exchange a client's reply belongs to, from the id of the server request it answers."""
    if isinstance(request_id, str) and "#" in request_id:
        return request_id.rsplit("#", 1)[0]
    return None


async def _serve(server: Any, dispatcher: Any, connection: Connection, lifespan_state: Any, task_status: Any) -> None:
    await serve_connection(
        server, dispatcher, connection=connection, lifespan_state=lifespan_state, task_status=task_status
    )


async def _wait_then_cancel(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
