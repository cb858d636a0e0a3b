"""`prompts/list` and `prompts/get`: the workspace's and global prompts."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from core.errors import ToolportError
from core.threads import run_sync
from tools.errors import InvalidPromptArguments, PromptNotFound
from tools.mcp_server.handlers.pages import page
from tools.selectors import visible_prompts
from tools.services import prompt_get_async


async def list_prompts(exchange: Any, params: types.PaginatedRequestParams) -> types.ListPromptsResult:
    workspace_id = exchange.credential.workspace_id

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
            for prompt in visible_prompts(workspace_id=workspace_id)
        ]

    found, following = page(await run_sync(read)(), params.cursor)
    return types.ListPromptsResult(prompts=found, next_cursor=following)


async def get_prompt(exchange: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    try:
        rendered = await prompt_get_async(
            workspace_id=exchange.credential.workspace_id,
            name=params.name,
            arguments=dict(params.arguments or {}),
            reuse_connections=True,
        )
    except PromptNotFound as error:
        raise MCPError(code=types.INVALID_PARAMS, message=error.message) from error
    except InvalidPromptArguments as error:
        raise MCPError(code=types.INVALID_PARAMS, message=error.message, data=error.details) from error
    except ToolportError as error:
        raise MCPError(code=types.INTERNAL_ERROR, message=error.message) from error
    return types.GetPromptResult.model_validate(
        {"description": rendered.description or None, "messages": rendered.messages}
    )
