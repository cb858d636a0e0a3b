"""Built-in tools: Python functions registered with `@builtin_tool`, mirrored as global Tool rows so staff can
disable them or change their security level like any other tool."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from accounts.models import SecurityLevel


@dataclass(frozen=True)
class ToolContext:
    """Who is calling: the workspace, and the API key's record (scopes) when called over MCP."""

    workspace_id: UUID
    api_key: Any = None
    # Over MCP: the request's back channel (progress, log messages, sampling, elicitation); see
    # tools.mcp_server.pipeline.exchange.Exchange. None in the console, the REST API and Celery.
    mcp: Any = None


@dataclass(frozen=True)
class ToolResult:
    """One result shape for every executor; the MCP endpoint maps it to content (text, structured, image)."""

    text: str
    structured: dict[str, Any] | None = None
    is_error: bool = False
    images: list[tuple[bytes, str]] = field(default_factory=list)  # (data, MIME type)
    extra_content: list[dict[str, Any]] = field(default_factory=list)  # other MCP content blocks, passed through


# Sync functions run in a thread (they may use the ORM); async ones are awaited on the event loop.
BuiltinFunction = Callable[[ToolContext, dict[str, Any]], ToolResult | Awaitable[ToolResult]]


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    function: BuiltinFunction
    security_level: int = SecurityLevel.PUBLIC
    read_only: bool = True
    output_schema: dict[str, Any] | None = None


F = TypeVar("F", bound=BuiltinFunction)

_builtins: dict[str, BuiltinTool] = {}


def builtin_tool(
    *,
    name: str,
    title: str,
    description: str,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    security_level: int = SecurityLevel.PUBLIC,
    read_only: bool = True,
) -> Callable[[F], F]:
    """Register a function as a built-in tool (apps call this at import time, e.g. rag for its search tools)."""

    def register(function: F) -> F:
        _builtins[name] = BuiltinTool(
            name=name,
            title=title,
            description=description,
            input_schema=input_schema or {"type": "object", "properties": {}, "additionalProperties": False},
            output_schema=output_schema,
            function=function,
            security_level=security_level,
            read_only=read_only,
        )
        return function

    return register


def builtin_get(name: str) -> BuiltinTool | None:
    return _builtins.get(name)


def builtins() -> list[BuiltinTool]:
    return sorted(_builtins.values(), key=lambda tool: tool.name)


# How `find_tools` ranks tools by meaning, when an app provides it (rag registers one that embeds the query and the
# tools' descriptions; without it, find_tools ranks by keywords alone). ranker(query, tools) -> [(similarity, tool)].
ToolRanker = Callable[[str, list[Any]], list[tuple[float, Any]]]
_tool_rankers: list[ToolRanker] = []


def tool_ranker_register(ranker: ToolRanker) -> None:
    _tool_rankers[:] = [ranker]


def tool_ranker() -> ToolRanker | None:
    return _tool_rankers[0] if _tool_rankers else None
