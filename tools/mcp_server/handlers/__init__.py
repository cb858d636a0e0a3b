"""The MCP methods Toolport serves, one module per family; the pipeline dispatches to `HANDLERS`.

A handler takes the exchange (who asks, in which session, the back channel) and its typed params, and returns the
result (a model or a dict); the pipeline shapes it for the wire. Errors, as the spec separates them: a tool that
fails is a result with `isError`; an unknown tool, prompt or resource and bad params are JSON-RPC errors
(-32602, -32002); a spent quota is QUOTA_EXCEEDED (-32029) naming the limit, the reset time and the upgrade URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from pydantic import BaseModel

from tools.mcp_server.handlers import completion, lifecycle, logging, prompts, resources, tools


@dataclass(frozen=True)
class Handler:
    function: Callable[[Any, Any], Awaitable[Any]]
    params: type[BaseModel]
    admits: bool = False  # the handler admits the message itself (tools/call: once it knows what the call costs)


HANDLERS: dict[str, Handler] = {
    "initialize": Handler(lifecycle.initialize, types.InitializeRequestParams),
    "ping": Handler(lifecycle.ping, types.RequestParams),
    "tools/list": Handler(tools.list_tools, types.PaginatedRequestParams),
    "tools/call": Handler(tools.call_tool, types.CallToolRequestParams, admits=True),
    "prompts/list": Handler(prompts.list_prompts, types.PaginatedRequestParams),
    "prompts/get": Handler(prompts.get_prompt, types.GetPromptRequestParams),
    "resources/list": Handler(resources.list_resources, types.PaginatedRequestParams),
    "resources/templates/list": Handler(resources.list_resource_templates, types.PaginatedRequestParams),
    "resources/read": Handler(resources.read_resource, types.ReadResourceRequestParams),
    "resources/subscribe": Handler(resources.subscribe, types.SubscribeRequestParams),
    "resources/unsubscribe": Handler(resources.unsubscribe, types.UnsubscribeRequestParams),
    "completion/complete": Handler(completion.complete, types.CompleteRequestParams),
    "logging/setLevel": Handler(logging.set_level, types.SetLevelRequestParams),
}
