"""`resources/*`: what the resource providers (upstream servers, knowledge bases) offer this caller, and the
session's subscriptions."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from core.errors import ToolportError
from tools import resources as registry
from tools.mcp_server.handlers.pages import page
from tools.mcp_server.pipeline.errors import RESOURCE_NOT_FOUND
from tools.mcp_server.sessions import subscription_change


def resource_caller(exchange: Any) -> registry.ResourceCaller:
    credential = exchange.credential
    return registry.ResourceCaller(workspace_id=credential.workspace_id, api_key=credential.key, reuse_connections=True)


async def list_resources(exchange: Any, params: types.PaginatedRequestParams) -> types.ListResourcesResult:
    found, following = page(await registry.resources_list(resource_caller(exchange)), params.cursor)
    return types.ListResourcesResult(resources=found, next_cursor=following)


async def list_resource_templates(
    exchange: Any, params: types.PaginatedRequestParams
) -> types.ListResourceTemplatesResult:
    found, following = page(await registry.resource_templates_list(resource_caller(exchange)), params.cursor)
    return types.ListResourceTemplatesResult(resource_templates=found, next_cursor=following)


async def read_resource(exchange: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    try:
        result = await registry.resource_read(resource_caller(exchange), uri)
    except ToolportError as error:
        raise MCPError(code=types.INTERNAL_ERROR, message=error.message) from error
    if result is None:
        raise MCPError(code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}", data={"uri": uri})
    return result


async def subscribe(exchange: Any, params: types.SubscribeRequestParams) -> dict[str, Any]:
    if exchange.session is not None:
        await subscription_change(exchange.session.id, str(params.uri), subscribe=True)
    return {}


async def unsubscribe(exchange: Any, params: types.UnsubscribeRequestParams) -> dict[str, Any]:
    if exchange.session is not None:
        await subscription_change(exchange.session.id, str(params.uri), subscribe=False)
    return {}
