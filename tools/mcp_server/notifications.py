"""Registry changes reach every live MCP session they concern, on every replica, through the channel layer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tools.mcp_server.transports.event_stream import ALL_GROUP, NOTIFY_EVENT, RESOURCE_UPDATED_EVENT, workspace_group

logger = logging.getLogger(__name__)

METHODS = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}


def list_changed_announce(kind: str, workspace_id: UUID | None) -> None:
    """tools.events listener: a global change goes to every session, a workspace's change to that workspace's."""
    layer = get_channel_layer()
    method = METHODS.get(kind)
    if layer is None or method is None:
        return
    group = ALL_GROUP if workspace_id is None else workspace_group(workspace_id)
    _group_send(layer, group, {"type": NOTIFY_EVENT, "message": {"jsonrpc": "2.0", "method": method}})


def resource_updated_announce(uri: str, workspace_id: UUID | None) -> None:
    """For providers whose resources change: sessions subscribed to `uri` get notifications/resources/updated."""
    layer = get_channel_layer()
    if layer is None:
        return
    group = ALL_GROUP if workspace_id is None else workspace_group(workspace_id)
    _group_send(layer, group, {"type": RESOURCE_UPDATED_EVENT, "uri": uri})


_pending: set[asyncio.Task[Any]] = set()


def _group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    """Send from sync code, whether or not this thread runs an event loop; a failure to announce is logged and
    never undoes the change it announces (this runs after the commit)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is None:
            async_to_sync(layer.group_send)(group, message)
        else:
            task = loop.create_task(layer.group_send(group, message))
            _pending.add(task)
            task.add_done_callback(_pending.discard)
    except Exception:
        logger.exception("mcp.announce_failed", extra={"group": group})
