"""One observation per tool call, from every place a call is answered (the MCP fast path, the MCP protocol core, the
REST API and the console), handed to the listeners that apps register: the usage-event ledger, Prometheus metrics.

`tool_call_observe` runs on the hot path: a listener must only append to memory or bump a counter, never do I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

logger = logging.getLogger(__name__)


class CallStatus:
    OK = "ok"
    TOOL_ERROR = "tool_error"  # the tool ran and failed (isError)
    DENIED = "denied"  # unknown or not-allowed tool, or the key's rate limit
    QUOTA = "quota"  # a monthly quota is used up
    ERROR = "error"  # our failure (an exception escaped)

    ALL = (OK, TOOL_ERROR, DENIED, QUOTA, ERROR)


class Transport:
    STREAMABLE_HTTP = "streamable-http"
    SSE = "sse"
    WEBSOCKET = "websocket"
    REST = "rest"
    CONSOLE = "console"


@dataclass(frozen=True, slots=True)
class ToolCall:
    workspace_id: UUID
    tool: str
    status: str
    latency_ms: float
    transport: str
    api_key_id: UUID | None = None
    error_code: int | None = None  # the JSON-RPC / HTTP code the caller got, when it was not a success
    ai_operations: int = 0  # AI operations the call was charged besides its api_calls unit
    at: float = field(default_factory=time.time)  # seconds since the epoch (UTC)


Listener = Callable[[ToolCall], None]
_listeners: list[Listener] = []


def tool_call_listener_register(listener: Listener) -> None:
    _listeners.append(listener)


def tool_call_observe(call: ToolCall) -> None:
    """Hand the call to every listener; a failing listener is logged, never raised into the call."""
    for listener in _listeners:
        try:
            listener(call)
        except Exception:
            logger.exception("A tool call listener failed: %s", getattr(listener, "__qualname__", listener))


def key_id(api_key: Any) -> UUID | None:
    """The id of an API key object of any shape (model, authenticated record), or None."""
    return getattr(api_key, "id", None) if api_key is not None else None
