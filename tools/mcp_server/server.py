"""The MCP server behind every transport: the SDK's low-level `Server`, its handlers backed by the registry.

Each handler serves the caller the transport set (`tools.mcp_server.caller`): it sees only what
`tools.selectors.visible_tools` (and the prompt and resource equivalents) allow that workspace and key.

Errors, as the spec prescribes:
- a tool that fails (bad arguments, its service down, a timeout) is a result with `isError` and a message the model
  can act on;
- an unknown or not-allowed tool, an unknown prompt or resource, and bad prompt arguments are JSON-RPC errors
  (-32602 invalid params, -32002 resource not found);
- a spent quota is a JSON-RPC error (`QUOTA_EXCEEDED`) whose message names the limit, the reset time and the upgrade
  URL, with the same facts as structured `data`.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import mcp_types as types
from django.conf import settings
from mcp.server import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError

from billing.quotas import QuotaExceeded
from core.errors import LimitReached, ToolportError
from core.threads import run_sync
from monitoring.calls import CallStatus, ToolCall, key_id, tool_call_observe
from tools import resources as resource_registry
from tools.builtins import ToolResult
from tools.errors import InvalidPromptArguments, PromptNotFound, ToolNotFound
from tools.executors import tool_call_async
from tools.mcp_server import sessions
from tools.mcp_server.caller import Caller, caller_get
from tools.models import Tool
from tools.selectors import visible_prompts, visible_tools
from tools.services import prompt_get_async

logger = logging.getLogger(__name__)

INVALID_PARAMS = types.INVALID_PARAMS
RESOURCE_NOT_FOUND = -32002
QUOTA_EXCEEDED = -32029  # application-defined (JSON-RPC reserves -32000..-32099 for the server)
LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]


def _page(items: list[Any], cursor: str | None) -> tuple[list[Any], str | None]:
    """Offset pagination with an opaque cursor."""
    size = settings.MCP_PAGE_SIZE
    try:
        start = int(base64.urlsafe_b64decode((cursor or "MA==").encode()).decode()) if cursor else 0
    except ValueError as error:
        raise MCPError(code=INVALID_PARAMS, message="Invalid cursor.") from error
    page = items[start : start + size]
    following = start + size
    return page, (base64.urlsafe_b64encode(str(following).encode()).decode() if following < len(items) else None)


def _limit_error(error: LimitReached) -> MCPError:
    data: dict[str, Any] = {"code": error.code, **error.details}
    if error.retry_after is not None:
        data["retryAfter"] = error.retry_after
    return MCPError(code=QUOTA_EXCEEDED, message=error.message, data=data)


def tool_definition(tool: Tool) -> types.Tool:
    annotations = {key: value for key, value in (tool.annotations or {}).items() if key != "title"}
    return types.Tool(
        name=tool.name,
        title=tool.title or None,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=types.ToolAnnotations(**annotations) if annotations else None,
    )


def result_to_mcp(result: ToolResult) -> types.CallToolResult:
    content: list[Any] = []
    if result.text or not (result.images or result.extra_content):
        content.append(types.TextContent(type="text", text=result.text))
    for data, mime_type in result.images:
        content.append(types.ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime_type))
    for block in result.extra_content:
        content.append(block)
    return types.CallToolResult.model_validate(
        {
            "content": [
                block if isinstance(block, dict) else block.model_dump(by_alias=True, exclude_none=True, mode="json")
                for block in content
            ],
            "structuredContent": result.structured,
            "isError": result.is_error,
        }
    )


class McpRequest:
    """The back channel of one MCP request, handed to tools as `ToolContext.mcp`."""

    def __init__(self, ctx: Any, caller: Caller) -> None:
        self._ctx = ctx
        self._caller = caller

    @property
    def protocol_version(self) -> str:
        return str(self._ctx.protocol_version)

    def client_supports(self, capability: str) -> bool:
        capabilities = self._ctx.session.client_capabilities
        return capabilities is not None and getattr(capabilities, capability, None) is not None

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        await self._ctx.session.report_progress(progress, total, message)

    async def log(self, level: str, data: Any, logger_name: str | None = None) -> None:
        """A log message to the client, if it asked for this level (logging/setLevel)."""
        wanted = self._caller.log_level
        if wanted is None or LOG_LEVELS.index(level) < LOG_LEVELS.index(wanted):
            return
        await self._ctx.session.send_log_message(level, data, logger_name, related_request_id=self._ctx.request_id)

    async def sample(self, messages: list[types.SamplingMessage], max_tokens: int, **options: Any) -> Any:
        return await self._ctx.session.create_message(
            messages, max_tokens=max_tokens, related_request_id=self._ctx.request_id, **options
        )

    async def elicit(self, message: str, requested_schema: dict[str, Any]) -> types.ElicitResult:
        return await self._ctx.session.elicit_form(message, requested_schema, related_request_id=self._ctx.request_id)


def _resource_caller(caller: Caller) -> resource_registry.ResourceCaller:
    return resource_registry.ResourceCaller(
        workspace_id=caller.workspace_id, api_key=caller.api_key, reuse_connections=True
    )


# --- Handlers -------------------------------------------------------------------------------------------------------


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    caller = caller_get()
    tools = await run_sync(
        lambda: [
            tool_definition(tool) for tool in visible_tools(workspace_id=caller.workspace_id, api_key=caller.api_key)
        ]
    )()
    page, following = _page(tools, params.cursor if params else None)
    return types.ListToolsResult(tools=page, next_cursor=following)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    caller = caller_get()
    started = time.perf_counter()
    status: str = CallStatus.ERROR  # unless the call ends one of the ways below
    code: int | None = types.INTERNAL_ERROR
    try:
        result = await tool_call_async(
            workspace_id=caller.workspace_id,
            name=params.name,
            arguments=params.arguments or {},
            api_key=caller.api_key,
            reuse_connections=True,
            mcp=McpRequest(ctx, caller),
        )
        status, code = (CallStatus.TOOL_ERROR, None) if result.is_error else (CallStatus.OK, None)
    except ToolNotFound as error:
        status, code = CallStatus.DENIED, INVALID_PARAMS
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}. {error.message}") from error
    except (QuotaExceeded, LimitReached) as error:
        status = CallStatus.QUOTA if isinstance(error, QuotaExceeded) else CallStatus.DENIED
        code = QUOTA_EXCEEDED
        raise _limit_error(error) from error
    finally:
        tool_call_observe(
            ToolCall(
                workspace_id=caller.workspace_id,
                tool=params.name,
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                transport=caller.transport,
                api_key_id=key_id(caller.api_key),
                error_code=code,
            )
        )
    return result_to_mcp(result)


async def list_prompts(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    caller = caller_get()

    def read() -> list[types.Prompt]:
        return [
            types.Prompt(
                name=prompt.name,
                title=prompt.title or None,
                description=prompt.description or None,
                arguments=[
                    types.PromptArgument(
                        name=argument["name"],
                        description=argument.get("description") or None,
                        required=bool(argument.get("required")),
                    )
                    for argument in prompt.arguments
                ],
            )
            for prompt in visible_prompts(workspace_id=caller.workspace_id)
        ]

    page, following = _page(await run_sync(read)(), params.cursor if params else None)
    return types.ListPromptsResult(prompts=page, next_cursor=following)


async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    caller = caller_get()
    try:
        rendered = await prompt_get_async(
            workspace_id=caller.workspace_id,
            name=params.name,
            arguments=dict(params.arguments or {}),
            reuse_connections=True,
        )
    except PromptNotFound as error:
        raise MCPError(code=INVALID_PARAMS, message=error.message) from error
    except InvalidPromptArguments as error:
        raise MCPError(code=INVALID_PARAMS, message=error.message, data=error.details) from error
    except ToolportError as error:
        raise MCPError(code=types.INTERNAL_ERROR, message=error.message) from error
    return types.GetPromptResult.model_validate(
        {"description": rendered.description or None, "messages": rendered.messages}
    )


async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    found = await resource_registry.resources_list(_resource_caller(caller_get()))
    page, following = _page(found, params.cursor if params else None)
    return types.ListResourcesResult(resources=page, next_cursor=following)


async def list_resource_templates(
    ctx: Any, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    found = await resource_registry.resource_templates_list(_resource_caller(caller_get()))
    page, following = _page(found, params.cursor if params else None)
    return types.ListResourceTemplatesResult(resource_templates=page, next_cursor=following)


async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    try:
        result = await resource_registry.resource_read(_resource_caller(caller_get()), uri)
    except ToolportError as error:
        raise MCPError(code=types.INTERNAL_ERROR, message=error.message) from error
    if result is None:
        raise MCPError(code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}", data={"uri": uri})
    return result


async def subscribe_resource(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    caller = caller_get()
    if caller.session_id:
        await sessions.subscription_change(caller.session_id, str(params.uri), subscribe=True)
    return types.EmptyResult()


async def unsubscribe_resource(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    caller = caller_get()
    if caller.session_id:
        await sessions.subscription_change(caller.session_id, str(params.uri), subscribe=False)
    return types.EmptyResult()


async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
    caller = caller_get()
    context = dict(params.context.arguments or {}) if params.context else {}
    values = await resource_registry.completion_values(
        _resource_caller(caller), params.ref, params.argument.name, params.argument.value, context
    )
    matching = [value for value in values if value.startswith(params.argument.value)]
    return types.CompleteResult(
        completion=types.Completion(values=matching[:100], total=len(matching), has_more=len(matching) > 100)
    )


async def set_logging_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    caller = caller_get()
    caller.log_level = params.level
    if caller.session_id:
        await sessions.session_update(caller.session_id, log_level=params.level)
    return types.EmptyResult()


class ToolportServer(Server[Any]):
    """Announces that tool, prompt and resource lists change (the registry pushes list_changed)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        changing = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        return super().create_initialization_options(
            notification_options or changing, experimental_capabilities, extensions
        )


def server_build() -> ToolportServer:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logging is deprecated at 2026-07-28 but still part of the versions we serve
        return ToolportServer(
            "toolport",
            version="1.0",
            title="Toolport",
            instructions="Tools, prompts and knowledge published by this workspace on Toolport.",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_prompts=list_prompts,
            on_get_prompt=get_prompt,
            on_list_resources=list_resources,
            on_list_resource_templates=list_resource_templates,
            on_read_resource=read_resource,
            on_subscribe_resource=subscribe_resource,
            on_unsubscribe_resource=unsubscribe_resource,
            on_completion=complete,
            on_set_logging_level=set_logging_level,
        )
