"""ASGI entry point, served by uvicorn or daphne: the MCP transports are routed by path, everything else goes to
Django."""

import gc
import os
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Django must be set up before anything imports models.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from core.logging import secret_redaction_install  # noqa: E402
from core.threads import run_sync  # noqa: E402
from monitoring.usage import usage_events_flush_at_exit  # noqa: E402
from tools.mcp_server.routing import http_routes, websocket_routes  # noqa: E402
from tools.mcp_server.transports.streamable import streamable_http_app  # noqa: E402

secret_redaction_install()  # the ASGI server's own loggers write request lines, query strings included

routed = ProtocolTypeRouter(
    {
        "http": URLRouter([*http_routes, re_path(r"", django_application)]),
        "websocket": URLRouter(websocket_routes),
    }
)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`/mcp` over HTTP, the busiest path by far, goes straight to its transport; the routers serve the rest."""
    if scope["type"] == "http" and scope["path"] in ("/mcp", "/mcp/"):
        await streamable_http_app(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await routed(scope, receive, send)


async def lifespan(receive: Any, send: Any) -> None:
    """Nothing to start (the MCP core starts on first use, as under daphne, which has no lifespan); at shutdown,
    write what is still buffered (usage events)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await run_sync(usage_events_flush_at_exit)()
            await send({"type": "lifespan.shutdown.complete"})
            return


if settings.MCP_CONFORMANCE_WORKSPACE:  # config.settings.conformance only: the suite sends no credentials
    from tools.mcp_server.conformance import conformance_asgi

    application = conformance_asgi(application)

# Everything imported so far lives as long as the process: keep it out of the garbage collector's sweeps, so a full
# collection walks only what requests allocate (otherwise it pauses a busy server for tens of milliseconds).
gc.freeze()
