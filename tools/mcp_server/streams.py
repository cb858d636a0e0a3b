"""Server-sent event streams fed by the channel layer: the Streamable HTTP `GET` stream and the legacy `/sse`
stream. The first bytes go out at once (an SSE comment: daphne holds the headers until the first body bytes), then a
comment every MCP_KEEPALIVE_SECONDS keeps proxies from closing an idle stream."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from channels.layers import get_channel_layer
from django.conf import settings

from tools.mcp_server import sessions
from tools.mcp_server.transport import NOTIFY_EVENT, Receive, Send, notify_groups_join, notify_groups_leave

RESOURCE_UPDATED_EVENT = "mcp.resource_updated"
logger = logging.getLogger(__name__)


async def event_stream(
    send: Send,
    receive: Receive,
    *,
    groups: tuple[str, ...],
    session_id: str,
    headers: dict[str, str] | None = None,
    first_event: bytes | None = None,
    on_close: Any = None,
) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None else None
    raw_headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ] + [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    if channel:
        await notify_groups_join(channel, *groups)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send({"type": "http.response.body", "body": first_event or b": stream open\n\n", "more_body": True})
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            while True:
                event = None
                with anyio.move_on_after(settings.MCP_KEEPALIVE_SECONDS):
                    if layer is not None and channel is not None:
                        try:
                            event = await layer.receive(channel)
                        except Exception:  # a Redis hiccup: keep the stream, try again after a pause
                            logger.warning("mcp.stream_receive_failed", exc_info=True)
                            await anyio.sleep(0.2)
                            continue
                    else:
                        await anyio.sleep_forever()
                if event is None:
                    await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                    continue
                payload = await stream_payload(event, session_id)
                if payload is not None:
                    body = b"event: message\ndata: " + json.dumps(payload).encode() + b"\n\n"
                    await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        with anyio.CancelScope(shield=True):
            if channel:
                await notify_groups_leave(channel, *groups)
            if on_close is not None:
                await on_close()


async def stream_payload(event: dict[str, Any], session_id: str) -> dict[str, Any] | None:
    """The JSON-RPC message a channel-layer event becomes on this session's stream, if any (resource updates only
    for the URIs the session subscribed to)."""
    if event.get("type") == NOTIFY_EVENT:
        message: dict[str, Any] = event["message"]
        return message
    if event.get("type") == RESOURCE_UPDATED_EVENT:
        record = await sessions.session_get(session_id)
        if record is not None and event["uri"] in record.subscriptions:
            return {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": event["uri"]}}
    return None
