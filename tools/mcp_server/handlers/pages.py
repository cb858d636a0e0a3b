"""Offset pagination of list results, with an opaque cursor."""

from __future__ import annotations

import base64
from typing import Any

import mcp_types as types
from django.conf import settings
from mcp.shared.exceptions import MCPError


def page(items: list[Any], cursor: str | None) -> tuple[list[Any], str | None]:
    size = settings.MCP_PAGE_SIZE
    try:
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
    except ValueError as error:
        raise MCPError(code=types.INVALID_PARAMS, message="Invalid cursor.") from error
    if start < 0:
        raise MCPError(code=types.INVALID_PARAMS, message="Invalid cursor.")
    following = start + size
    next_cursor = base64.urlsafe_b64encode(str(following).encode()).decode() if following < len(items) else None
    return items[start:following], next_cursor
