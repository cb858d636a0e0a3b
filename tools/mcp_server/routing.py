"""Paths the MCP transports own, mounted in config/asgi.py ahead of Django. Each transport checks the origin and
the credential itself (so it can answer as its protocol says: 401 with the RFC 9728 challenge, or a WebSocket close)."""

from django.urls import re_path

from tools.mcp_server.transports.legacy_sse import messages_app, sse_app
from tools.mcp_server.transports.streamable import streamable_http_app
from tools.mcp_server.transports.websocket import websocket_app

http_routes = [
    re_path(r"^mcp/?$", streamable_http_app),
    re_path(r"^sse/?$", sse_app),
    re_path(r"^messages/?$", messages_app),
]

websocket_routes = [
    re_path(r"^mcp/ws/?$", websocket_app),
]
