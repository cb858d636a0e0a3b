"""Placeholders that hold the MCP paths until the protocol endpoint lands: every request gets a clear 501."""

import json

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

NOT_IMPLEMENTED = {
    "code": "not_implemented",
    "message": "The MCP endpoint is not available on this server yet.",
}

# Application-defined WebSocket close code (4000-4999): "501 Not Implemented".
CLOSE_NOT_IMPLEMENTED = 4501


class ReservedHttpEndpoint(AsyncHttpConsumer):
    """Answers any method on a reserved MCP path with 501 and a JSON body naming the transport."""

    transport = "MCP"

    async def handle(self, body: bytes) -> None:
        payload = {**NOT_IMPLEMENTED, "details": {"transport": self.transport, "path": self.scope["path"]}}
        await self.send_response(
            501,
            json.dumps(payload).encode(),
            headers=[(b"Content-Type", b"application/json"), (b"Cache-Control", b"no-store")],
        )


class ReservedWebSocketEndpoint(AsyncWebsocketConsumer):
    """Accepts the handshake, sends one JSON frame saying the endpoint is not available, and closes (4501)."""

    async def connect(self) -> None:
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="mcp" if "mcp" in offered else None)
        payload = {**NOT_IMPLEMENTED, "details": {"transport": "WebSocket", "path": self.scope["path"]}}
        await self.send(text_data=json.dumps(payload))
        await self.close(code=CLOSE_NOT_IMPLEMENTED)
