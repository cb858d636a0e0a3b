"""`completion/complete`: values for a prompt's or a resource template's argument, from the resource providers."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from tools import resources as registry
from tools.mcp_server.handlers.resources import resource_caller


async def complete(exchange: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
    context = dict(params.context.arguments or {}) if params.context else {}
    values = await registry.completion_values(
        resource_caller(exchange), params.ref, params.argument.name, params.argument.value, context
    )
    matching = [value for value in values if value.startswith(params.argument.value)]
    return types.CompleteResult(
        completion=types.Completion(values=matching[:100], total=len(matching), has_more=len(matching) > 100)
    )
