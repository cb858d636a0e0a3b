"""`initialize` (the handshake era's negotiation) and `ping`."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from tools.mcp_server.sessions import Peer

SERVER_INFO = {"name": "toolport", "title": "Toolport", "version": "1.0"}
INSTRUCTIONS = "Tools, prompts and knowledge published by this workspace on Toolport."
# Tool, prompt and resource lists change (the registry pushes list_changed); resources can be subscribed to.
CAPABILITIES = {
    "logging": {},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "tools": {"listChanged": True},
    "completions": {},
}


async def initialize(exchange: Any, params: types.InitializeRequestParams) -> dict[str, Any]:
    """The client's version if we serve it, else our latest; the session keeps the negotiated peer."""
    requested = params.protocol_version
    version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    exchange.version = version
    exchange.negotiated = Peer(
        protocol_version=version,
        client_info=params.client_info.model_dump(by_alias=True, exclude_none=True, mode="json"),
        client_capabilities=params.capabilities.model_dump(by_alias=True, exclude_none=True, mode="json"),
    )
    return {
        "protocolVersion": version,
        "capabilities": CAPABILITIES,
        "serverInfo": SERVER_INFO,
        "instructions": INSTRUCTIONS,
    }


async def ping(exchange: Any, params: types.RequestParams) -> dict[str, Any]:
    return {}
