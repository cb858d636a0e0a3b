"""Paths the MCP transports own, mounted in config/asgi.py ahead of Django."""

from django.urls import re_path

from tools.mcp_server.consumers import ReservedHttpEndpoint, ReservedWebSocketEndpoint

http_routes = [
    re_path(r"^mcp/?$", ReservedHttpEndpoint.as_asgi(transport="Streamable HTTP")),
    re_path(r"^sse/?$", ReservedHttpEndpoint.as_asgi(transport="HTTP+SSE (legacy)")),
    re_path(r"^messages/?$", ReservedHttpEndpoint.as_asgi(transport="HTTP+SSE (legacy)")),
]

websocket_routes = [
    re_path(r"^mcp/ws/?$", ReservedWebSocketEndpoint.as_asgi()),
]
