"""Copy-ready configurations for MCP clients, shown on the console's API keys page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

KEY_PLACEHOLDER = "<YOUR_API_KEY>"


@dataclass(frozen=True)
class ClientConfig:
    slug: str
    name: str
    where: str
    text: str


def client_configs(endpoint: str, key: str) -> list[ClientConfig]:
    """How Claude Desktop, Cursor, VS Code and the Python SDK reach `endpoint` with `key`."""
    header = f"Bearer {key}"
    bridge = ["-y", "mcp-remote", endpoint, "--header", f"Authorization:{header}"]
    claude = {"mcpServers": {"toolport": {"command": "npx", "args": bridge}}}
    cursor = {"mcpServers": {"toolport": {"url": endpoint, "headers": {"Authorization": header}}}}
    vscode = {"servers": {"toolport": {"type": "http", "url": endpoint, "headers": {"Authorization": header}}}}
    python = (
        "import asyncio\n\n"
        "import httpx2\n"
        "from mcp import Client\n"
        "from mcp.client.streamable_http import streamable_http_client\n\n\n"
        "async def main():\n"
        f'    http = httpx2.AsyncClient(headers={{"Authorization": "{header}"}})\n'
        f'    async with Client(streamable_http_client("{endpoint}", http_client=http)) as client:\n'
        "        tools = await client.list_tools()\n"
        "        print([tool.name for tool in tools.tools])\n\n\n"
        "asyncio.run(main())\n"
    )
    return [
        ClientConfig(
            "claude", "Claude Desktop", "claude_desktop_config.json (through the mcp-remote bridge)", _json(claude)
        ),
        ClientConfig("cursor", "Cursor", "~/.cursor/mcp.json", _json(cursor)),
        ClientConfig("vscode", "VS Code", ".vscode/mcp.json", _json(vscode)),
        ClientConfig("python", "Python (official SDK)", "client.py (pip install mcp)", python),
    ]


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)


def endpoint_url(request: Any) -> str:
    return str(request.build_absolute_uri("/mcp"))


def key_page_panel(request: Any, workspace_id: Any, keys: Any, secret: str | None) -> str:
    """The "Connect an MCP client" card: the endpoint, and the configurations for a chosen key."""
    endpoint = endpoint_url(request)
    if secret:
        choices = [{"label": "this key", "key": secret}]
    else:
        choices = [
            {"label": f"{key.name} ({key.prefix}…)", "key": f"{key.prefix}_<REST_OF_THIS_KEY>"}
            for key in keys
            if key.status == "active"
        ] or [{"label": "your key", "key": KEY_PLACEHOLDER}]
    configs = [
        {"slug": config.slug, "name": config.name, "where": config.where, "template": config.text}
        for config in client_configs(endpoint, "@@KEY@@")
    ]
    html = render_to_string(
        "tools/mcp_clients.html",
        {
            "endpoint": endpoint,
            "choices": choices,
            "configs": configs,
            "full_key": bool(secret),
            "sse_endpoint": str(request.build_absolute_uri("/sse")),
            "ws_endpoint": str(request.build_absolute_uri("/mcp/ws")).replace("http", "ws", 1),
        },
        request=request,
    )
    return mark_safe(html)  # noqa: S308 - rendered by the template engine, which escaped every value
