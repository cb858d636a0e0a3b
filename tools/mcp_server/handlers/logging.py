"""`logging/setLevel`: the session's log messages from this level up (handshake era; 2026-07-28 asks per request)."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from tools.mcp_server.sessions import session_update


async def set_level(exchange: Any, params: types.SetLevelRequestParams) -> dict[str, Any]:
    if exchange.session is not None:
        exchange.session.log_level = params.level
        await session_update(exchange.session.id, log_level=params.level)
    return {}
