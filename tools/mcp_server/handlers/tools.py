"""`tools/list` and `tools/call`: the registry's tools this key may see, run with its plan's quota."""

from __future__ import annotations

import base64
import time
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from billing.admission import RateLimited
from billing.models import Metric
from billing.quotas import QuotaExceeded
from core.errors import LimitReached
from monitoring.calls import CallStatus, ToolCall, tool_call_observe
from tools.builtins import ToolContext, ToolResult
from tools.executors import arguments_error, tool_execute
from tools.mcp_server.handlers.pages import page
from tools.mcp_server.pipeline.admission import admit
from tools.mcp_server.pipeline.auth import tools_visible
from tools.mcp_server.pipeline.errors import QUOTA_EXCEEDED, limit_error
from tools.models import Tool


def tool_definition(tool: Tool) -> dict[str, Any]:
    annotations = {key: value for key, value in (tool.annotations or {}).items() if key != "title"}
    definition = types.Tool(
        name=tool.name,
        title=tool.title or None,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=types.ToolAnnotations(**annotations) if annotations else None,
    )
    return definition.model_dump(by_alias=True, exclude_none=True, mode="json")


def result_to_mcp(result: ToolResult) -> dict[str, Any]:
    """The CallToolResult on the wire; a text-only result (most are) is built directly."""
    if result.structured is None and not result.images and not result.extra_content:
        return {"content": [{"type": "text", "text": result.text}], "isError": result.is_error}
    content: list[dict[str, Any]] = []
    if result.text or not (result.images or result.extra_content):
        content.append({"type": "text", "text": result.text})
    for data, mime_type in result.images:
        content.append({"type": "image", "data": base64.b64encode(data).decode(), "mimeType": mime_type})
    content.extend(result.extra_content)
    body: dict[str, Any] = {"content": content, "isError": result.is_error}
    if result.structured is not None:
        body["structuredContent"] = result.structured
    return body


async def list_tools(exchange: Any, params: types.PaginatedRequestParams) -> dict[str, Any]:
    credential = exchange.credential
    if credential.tool_list is None:
        visible = await tools_visible(credential)
        credential.tool_list = [tool_definition(tool) for tool in visible.values()]
    found, following = page(credential.tool_list, params.cursor)
    # ttlMs/cacheScope: 2026-07-28's cache hints (none yet: a client may not reuse the list); older revisions drop them
    result: dict[str, Any] = {"ttlMs": 0, "cacheScope": "private", "tools": found}
    if following:
        result["nextCursor"] = following
    return result


async def call_tool(exchange: Any, params: types.CallToolRequestParams) -> dict[str, Any]:
    """Admit the call with what it costs (api_calls, plus the tool's AI operations), run it under its timeout."""
    started = time.perf_counter()
    status, ai_operations = CallStatus.ERROR, 0
    code: int | None = types.INTERNAL_ERROR
    arguments = params.arguments or {}
    tool: Tool | None = None
    problem: str | None = None

    async def charges_of(credential: Any) -> list[tuple[str, int]]:
        """What the call costs, from this caller's view of the registry (read again if the epoch moved)."""
        nonlocal tool, problem
        tool = (await tools_visible(credential)).get(params.name)
        problem = arguments_error(tool, arguments) if tool is not None else None
        if tool is None or problem:
            return []  # refused below; the message still counts against the key's rate
        charges = [(str(Metric.API_CALLS), 1)]
        if tool.ai_operation_cost:
            charges.append((str(Metric.AI_OPERATIONS), tool.ai_operation_cost))
        return charges

    try:
        exchange.credential = await admit(exchange.credential, exchange.session, resolve=charges_of)
        if tool is None:
            status, code = CallStatus.DENIED, types.INVALID_PARAMS
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown tool: {params.name}. No tool named {params.name!r} is available to this key.",
            )
        if problem:
            result = ToolResult(text=problem, is_error=True)
        else:
            ai_operations = tool.ai_operation_cost
            credential = exchange.credential
            context = ToolContext(workspace_id=credential.workspace_id, api_key=credential.key, mcp=exchange)
            result = await tool_execute(tool, context, arguments, reuse_connections=True)
        status, code = (CallStatus.TOOL_ERROR if result.is_error else CallStatus.OK), None
    except RateLimited:
        status, code = CallStatus.DENIED, 429
        raise  # the transport answers it (HTTP 429 with Retry-After)
    except LimitReached as error:
        status = CallStatus.QUOTA if isinstance(error, QuotaExceeded) else CallStatus.DENIED
        code = QUOTA_EXCEEDED
        raise limit_error(error) from error
    finally:
        tool_call_observe(
            ToolCall(
                workspace_id=exchange.credential.workspace_id,
                tool=params.name,
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                transport=exchange.transport,
                api_key_id=exchange.credential.key_id,
                error_code=code,
                ai_operations=ai_operations,
            )
        )
    return result_to_mcp(result)
