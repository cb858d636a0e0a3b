"""What this deployment holds and runs: the counts and versions behind `/stats` (operators only) and the public
description of the MCP endpoint behind `/capabilities`.

The models of the apps above monitoring are reached through Django's app registry, not imported: monitoring sits
below them (docs/architecture.md, "Layers") and only reads their row counts.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core.cache import cache as django_cache
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_PROTOCOL_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

from core.database import pgvector_version

CAPABILITIES_CACHE_SECONDS = 60


def _count(label: str, condition: Q | None = None) -> int:
    model = apps.get_model(label)
    rows = model._default_manager.all()
    return rows.filter(condition).count() if condition is not None else rows.count()


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@cache
def git_commit() -> str | None:
    """`TOOLPORT_GIT_COMMIT` (set when an image is built), else the checkout's HEAD, else unknown."""
    if commit := os.environ.get("TOOLPORT_GIT_COMMIT", "").strip():
        return commit
    git = Path(settings.BASE_DIR) / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split(" ", 1)[0]
    except OSError:
        pass
    return None


def deployment_stats() -> dict[str, Any]:
    """Row counts of the catalogue and the tenants, and the versions of what serves them."""
    now = timezone.now()
    active_key = (Q(revoked_at__isnull=True) | Q(revoked_at__gt=now)) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (postgres,) = cursor.fetchone()
    return {
        "counts": {
            "workspaces": _count("accounts.Workspace"),
            "api_keys": _count("accounts.ApiKey"),
            "api_keys_active": _count("accounts.ApiKey", active_key),
            "tools": _count("tools.Tool"),
            "tools_global": _count("tools.Tool", Q(workspace__isnull=True)),
            "prompts": _count("tools.Prompt"),
            "knowledge_bases": _count("rag.KnowledgeBase"),
            "documents": _count("rag.Document"),
            "chunks": _count("rag.Chunk"),
        },
        "versions": {
            "toolport": _package("toolport") or "0.1.0",
            "python": platform.python_version(),
            "django": django.get_version(),
            "mcp_sdk": _package("mcp"),
            "postgresql": str(postgres).split(" ")[0],
            "pgvector": pgvector_version(connection),
        },
        "git_commit": git_commit(),
    }


def _capabilities() -> dict[str, Any]:
    handshake = list(HANDSHAKE_PROTOCOL_VERSIONS)
    return {
        "server": {"name": "toolport", "title": "Toolport"},
        "transports": [
            {
                "name": "streamable-http",
                "path": "/mcp",
                "methods": ["POST", "GET", "DELETE"],
                "protocol_versions": [*handshake, *MODERN_PROTOCOL_VERSIONS],
            },
            {
                "name": "sse",
                "path": "/sse",
                "messages_path": "/messages",
                "protocol_versions": handshake,
            },
            {"name": "websocket", "path": "/mcp/ws", "subprotocol": "mcp", "protocol_versions": handshake},
        ],
        "protocol_versions": {
            "handshake": handshake,
            "stateless": list(MODERN_PROTOCOL_VERSIONS),
            "latest": LATEST_PROTOCOL_VERSION,
            "latest_handshake": LATEST_HANDSHAKE_VERSION,
        },
        "capabilities": {
            "tools": {"listChanged": True},
            "prompts": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "completions": {},
            "logging": {},
        },
        "authentication": {
            "schemes": ["Bearer API key", "X-API-Key"],
            "resource_metadata": "/.well-known/oauth-protected-resource/mcp",
        },
        # The global catalogue every workspace starts from (its own tools, prompts and knowledge come on top).
        "counts": {
            "tools": _count("tools.Tool", Q(workspace__isnull=True, enabled=True)),
            "prompts": _count("tools.Prompt", Q(workspace__isnull=True, enabled=True)),
            "resources": _count("rag.Document", Q(knowledge_base__workspace__isnull=True, status="ready")),
        },
        "sdk": {"name": "mcp", "version": _package("mcp")},
    }


def capabilities() -> dict[str, Any]:
    """The public description of the MCP endpoint, cached for a minute (it is served without authentication)."""
    key = "monitoring:capabilities"
    found = django_cache.get(key)
    if found is None:
        found = _capabilities()
        django_cache.set(key, found, CAPABILITIES_CACHE_SECONDS)
    return found
