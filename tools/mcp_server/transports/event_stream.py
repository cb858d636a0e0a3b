"""Server-sent event streams that a session holds open: the Streamable HTTP `GET` stream and the legacy `/sse`
stream. Messages reach them two ways:
- from this process, straight into the stream's queue (`stream_deliver`: a legacy SSE answer served here, the
  common case);
- from any replica, through the channel layer: the session's group (answers served elsewhere, resource updates,
  eviction), the workspace's group and `mcp-all` (registry changes as `notifications/*/list_changed`).
The first bytes go out at once (an SSE comment: daphne holds the headers until the first body bytes), then a comment
every MCP_KEEPALIVE_SECONDS keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from tools.mcp_server.sessions import SESSION_CLOSED_EVENT, session_get, session_group
from tools.mcp_server.transports.http import Receive, Send

logger = logging.getLogger(__name__)

ALL_GROUP = "mcp-all"
NOTIFY_EVENT = "mcp.notify"
RESOURCE_UPDATED_EVENT = "mcp.resource_updated"
_CLOSE = object()

_local: dict[str, asyncio.Queue[Any]] = {}  # session id → the queue of its stream open in this process


def workspace_group(workspace_id: Any) -> str:
    return f"mcp-w-{workspace_id}"


def stream_groups(session_id: str, workspace_id: Any) -> tuple[str, ...]:
    return (session_group(session_id), workspace_group(workspace_id), ALL_GROUP)


async def stream_deliver(session_id: str, message: dict[str, Any]) -> None:
    """Send a message to the session's stream, wherever it is open."""
    queue = _local.get(session_id)
    if queue is not None:
        queue.put_nowait(message)
        return
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(session_group(session_id), {"type": NOTIFY_EVENT, "message": message})


async def stream_close(session_id: str) -> None:
    """End the session's stream, wherever it is open (its key was revoked, the session evicted)."""
    queue = _local.get(session_id)
    if queue is not None:
        queue.put_nowait(_CLOSE)
        return
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(session_group(session_id), {"type": SESSION_CLOSED_EVENT})


async def event_payload(event: dict[str, Any], session_id: str) -> dict[str, Any] | object | None:
    """What a channel-layer event becomes on this session's stream: a message, nothing, or _CLOSE."""
    kind = event.get("type")
    if kind == NOTIFY_EVENT:
        message: dict[str, Any] = event["message"]
        return message
    if kind == RESOURCE_UPDATED_EVENT:
        record = await session_get(session_id)
        if record is not None and event["uri"] in record.subscriptions:
            return {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": event["uri"]}}
        return None
    if kind == SESSION_CLOSED_EVENT:
        return _CLOSE
    return None


class Subscription:
    """A session's place in the channel layer while its stream (or WebSocket) is open: its groups, a pump from the
    layer into a local queue, and the queue other exchanges in this process deliver to directly."""

    def __init__(self, session_id: str, workspace_id: Any) -> None:
        self.session_id = session_id
        self.groups = stream_groups(session_id, workspace_id)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscription:
        _local[self.session_id] = self.queue
        if self.layer is not None:
            self.channel = await self.layer.new_channel()
            for group in self.groups:
                await self.layer.group_add(group, self.channel)
            self.pump = asyncio.get_running_loop().create_task(self._pump())
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if _local.get(self.session_id) is self.queue:
            del _local[self.session_id]
        if self.pump is not None:
            self.pump.cancel()
        if self.layer is not None and self.channel is not None:
            try:
                for group in self.groups:
                    await asyncio.shield(self.layer.group_discard(group, self.channel))
            except Exception:  # the groups expire on their own
                logger.warning("mcp.stream_leave_failed", exc_info=True)

    async def _pump(self) -> None:
        layer, channel = self.layer, self.channel
        if layer is None or channel is None:
            return
        while True:
            try:
                event = await layer.receive(channel)
                payload = await event_payload(event, self.session_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup: keep the stream, try again after a pause
                logger.warning("mcp.stream_receive_failed", exc_info=True)
                await asyncio.sleep(0.2)
                continue
            if payload is not None:
                self.queue.put_nowait(payload)

    async def next(self, timeout: float) -> dict[str, Any] | object | None:
        """The next message, _CLOSE when the session was closed elsewhere, None after `timeout` idle seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None


async def event_stream(
    send: Send,
    receive: Receive,
    *,
    session_id: str,
    workspace_id: Any,
    headers: dict[str, str] | None = None,
    first_event: bytes | None = None,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> None:
    raw_headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ] + [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    subscription = Subscription(session_id, workspace_id)
    watcher: asyncio.Task[None] | None = None
    try:
        async with subscription:
            await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
            await send({"type": "http.response.body", "body": first_event or b": stream open\n\n", "more_body": True})
            watcher = asyncio.get_running_loop().create_task(_disconnected(receive, subscription.queue))
            while True:
                message = await subscription.next(settings.MCP_KEEPALIVE_SECONDS)
                if message is _CLOSE:
                    break
                if message is None:
                    await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                    continue
                body = b"event: message\ndata: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # the client went away mid-write
        pass
    finally:
        if watcher is not None:
            watcher.cancel()
        if on_close is not None:
            await asyncio.shield(on_close())


async def _disconnected(receive: Receive, queue: asyncio.Queue[Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    queue.put_nowait(_CLOSE)
