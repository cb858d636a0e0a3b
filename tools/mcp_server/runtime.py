"""The protocol core's one server per process, started on first use (the ASGI servers run without lifespan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.mcp_server.server import ToolportServer, server_build


@dataclass
class Runtime:
    server: ToolportServer
    lifespan_state: Any


_runtime: Runtime | None = None


async def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        server = server_build()
        # The low-level server's lifespan holds no resources (it yields {}): enter it for its state and keep it.
        lifespan = server.lifespan(server)
        state = await lifespan.__aenter__()
        _runtime = Runtime(server=server, lifespan_state=state)
    return _runtime
