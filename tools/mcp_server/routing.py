"""Paths the MCP transports own, mounted in config/asgi.py ahead of Django. Every one needs an API key."""

from django.urls import re_path

from accounts.authentication import ApiKeyMiddleware
from tools.mcp_server.consumers import ReservedHttpEndpoint, ReservedWebSocketEndpoint

http_routes = [
    re_path(r"^mcp/?$", ApiKeyMiddleware(ReservedHttpEndpoint.as_asgi(transport="Streamable HTTP"))),
    re_path(r"^sse/?$", ApiKeyMiddleware(ReservedHttpEndpoint.as_asgi(transport="HTTP+SSE (legacy)"))),
    re_path(r"^messages/?$", ApiKeyMiddleware(ReservedHttpEndpoint.as_asgi(transport="HTTP+SSE (legacy)"))),
]

websocket_routes = [
    re_path(r"^mcp/ws/?$", ApiKeyMiddleware(ReservedWebSocketEndpoint.as_asgi())),
]
