"""Domain errors of the registry."""

from core.errors import InvalidInput, NotAllowed, NotFound


class InvalidTool(InvalidInput):
    code = "invalid_tool"


class InvalidPromptArguments(InvalidInput):
    code = "invalid_prompt_arguments"


class ToolNotFound(NotFound):
    code = "tool_not_found"


class CustomToolsNotAllowed(NotAllowed):
    code = "custom_tools_not_allowed"


class PromptNotFound(NotFound):
    code = "prompt_not_found"
