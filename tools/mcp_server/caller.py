"""Who the protocol core is serving right now: set by the transport for each exchange, read by the handlers."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from core.threads import parallel_sync, parallel_sync_reset


@dataclass
class Caller:
    """An authenticated MCP client: its workspace, its key (scopes), and the session it speaks in."""

    workspace_id: UUID
    api_key: Any = None  # accounts.api_keys.AuthenticatedKey; None only in the conformance test mode
    session_id: str | None = None
    transport: str = "streamable-http"
    log_level: str | None = None  # logging/setLevel of the session; None: the client asked for no log messages


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("mcp_caller", default=None)


def caller_get() -> Caller:
    caller = _current.get()
    if caller is None:
        raise RuntimeError("No MCP caller: the transport must set one before serving a message.")
    return caller


def caller_set(caller: Caller) -> tuple[contextvars.Token[Caller | None], contextvars.Token[bool]]:
    """Serve `caller` from here on; its sync work runs in the shared thread pool (see core.threads)."""
    return _current.set(caller), parallel_sync()


def caller_reset(tokens: tuple[contextvars.Token[Caller | None], contextvars.Token[bool]]) -> None:
    caller_token, parallel_token = tokens
    parallel_sync_reset(parallel_token)
    _current.reset(caller_token)
