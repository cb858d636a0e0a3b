"""Writes on the registry. Every change goes through here: validated, audited, and announced (tools.events)."""

import re
from dataclasses import dataclass
from typing import Any

import jsonschema
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Role
from billing.quotas import billing_account_get, effective_plan
from core.audit import audit_record
from core.threads import run_sync
from tools.builtins import ToolContext, ToolResult, builtins
from tools.errors import CustomToolsNotAllowed, InvalidPromptArguments, InvalidTool, PromptNotFound
from tools.events import registry_changed
from tools.executors import arguments_error, tool_execute
from tools.models import MCP_NAME_PATTERN, Prompt, Tool, ToolKind, UpstreamServer
from tools.selectors import visible_prompts
from tools.upstream import upstream_prompt_get

ANNOTATION_HINTS = {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


def tool_definition_validate(
    *, name: str, input_schema: Any, output_schema: Any = None, annotations: Any = None
) -> None:
    """Refuse a tool that MCP clients could not use: its name, its schemas (JSON Schema 2020-12), its annotations."""
    if not re.fullmatch(MCP_NAME_PATTERN, name or ""):
        raise InvalidTool(
            f"{name!r} is not a valid MCP tool name: use 1-128 letters, digits, '_', '-' or '.'.",
            details={"field": "name"},
        )
    for field, schema in (("input_schema", input_schema), ("output_schema", output_schema)):
        if schema is None and field == "output_schema":
            continue
        if not isinstance(schema, dict):
            raise InvalidTool(f"The {field.replace('_', ' ')} must be a JSON object.", details={"field": field})
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            path = "/".join(str(part) for part in error.path) or "(root)"
            raise InvalidTool(
                f"The {field.replace('_', ' ')} is not valid JSON Schema 2020-12 at {path}: {error.message}",
                details={"field": field},
            ) from error
        if schema.get("type") != "object":
            raise InvalidTool(
                f'The {field.replace("_", " ")} must describe an object ("type": "object").', details={"field": field}
            )
    unknown = set(annotations or {}) - ANNOTATION_HINTS - {"title"}
    if unknown:
        raise InvalidTool(f"Unknown annotations: {', '.join(sorted(unknown))}.", details={"field": "annotations"})


@transaction.atomic
def tool_save(*, tool: Tool, actor: Any = None, request: Any = None) -> Tool:
    """Validate and save a tool (staff for global tools; the admin calls this too)."""
    tool_definition_validate(
        name=tool.name, input_schema=tool.input_schema, output_schema=tool.output_schema, annotations=tool.annotations
    )
    if tool.kind == ToolKind.HTTP and not tool.http_url_template.startswith(("http://", "https://")):
        raise InvalidTool("An HTTP tool needs an http:// or https:// URL.", details={"field": "http_url_template"})
    if tool.kind == ToolKind.UPSTREAM and (tool.upstream_id is None or not tool.upstream_tool_name):
        raise InvalidTool("An upstream tool needs its server and the tool's name there.", details={"field": "upstream"})
    creating = tool._state.adding
    tool.save()
    audit_record(
        action="tool.create" if creating else "tool.update",
        actor=actor,
        workspace=tool.workspace,
        target=tool,
        request=request,
        detail={"name": tool.name, "kind": tool.kind, "security_level": tool.security_level, "enabled": tool.enabled},
    )
    registry_changed("tools", tool.workspace_id)
    return tool


@transaction.atomic
def custom_tool_save(*, actor: Membership, tool: Tool, request: Any = None) -> Tool:
    """A workspace's own HTTP tool: admins and owners, on plans that allow custom tools, up to the plan's level."""
    actor.require_role(Role.ADMIN, "manage custom tools")
    if not tool._state.adding and tool.workspace_id != actor.workspace_id:
        raise InvalidTool("Only this workspace's own tools can be edited here.")
    plan = effective_plan(billing_account_get(workspace_id=actor.workspace_id), timezone.now())
    if not plan.custom_tools_allowed:
        raise CustomToolsNotAllowed(f"The {plan.name} plan does not include custom tools. Upgrade to add your own.")
    if tool.kind != ToolKind.HTTP:
        raise InvalidTool("Workspaces can add HTTP tools; built-in and upstream tools are managed by staff.")
    if tool.security_level > plan.max_security_level:
        raise InvalidTool(
            f"The {plan.name} plan allows tools up to security level {plan.max_security_level}.",
            details={"field": "security_level"},
        )
    tool.workspace_id = actor.workspace_id
    return tool_save(tool=tool, actor=actor.user, request=request)


@transaction.atomic
def custom_tool_delete(*, actor: Membership, tool: Tool, request: Any = None) -> None:
    actor.require_role(Role.ADMIN, "delete custom tools")
    if tool.workspace_id != actor.workspace_id:
        raise InvalidTool("Only this workspace's own tools can be deleted here.")
    tool_delete(tool=tool, actor=actor.user, request=request)


@transaction.atomic
def tool_delete(*, tool: Tool, actor: Any = None, request: Any = None) -> None:
    audit_record(
        action="tool.delete",
        actor=actor,
        workspace=tool.workspace,
        target=tool,
        request=request,
        detail={"name": tool.name},
    )
    workspace_id = tool.workspace_id
    tool.delete()
    registry_changed("tools", workspace_id)


@transaction.atomic
def builtin_tools_sync() -> int:
    """Mirror every registered built-in as a global Tool row; keeps staff's enabled flag and security level."""
    count = 0
    for builtin in builtins():
        tool, created = Tool.objects.get_or_create(
            workspace=None,
            name=builtin.name,
            defaults={
                "kind": ToolKind.BUILTIN,
                "security_level": builtin.security_level,
                "description": builtin.description,
            },
        )
        tool.kind, tool.builtin_name = ToolKind.BUILTIN, builtin.name
        tool.title, tool.description = builtin.title, builtin.description
        tool.input_schema, tool.output_schema = builtin.input_schema, builtin.output_schema
        tool.annotations = {"readOnlyHint": builtin.read_only}
        tool_definition_validate(name=tool.name, input_schema=tool.input_schema, output_schema=tool.output_schema)
        tool.save()
        count += int(created)
    if count:
        registry_changed("tools", None)
    return count


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def prompt_render(*, prompt: Prompt, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt's messages with `{argument}` placeholders filled in. Only declared arguments are substituted, as
    plain text: no attribute access, format specs or template code, whatever the values contain.

    A message is `{"role", "text"}`, or `{"role", "content"}` with an MCP content block (image, embedded resource…)
    whose string fields take placeholders the same way. Returns `{"role", "text"}` or `{"role", "content"}` items."""
    declared = {argument["name"]: argument for argument in prompt.arguments}
    missing = [name for name, argument in declared.items() if argument.get("required") and not arguments.get(name)]
    if missing:
        raise InvalidPromptArguments(f"Missing required arguments: {', '.join(missing)}.", details={"missing": missing})
    unknown = sorted(set(arguments) - set(declared))
    if unknown:
        raise InvalidPromptArguments(f"Unknown arguments: {', '.join(unknown)}.", details={"unknown": unknown})

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(
            lambda match: str(arguments.get(match.group(1), "")) if match.group(1) in declared else match.group(0), text
        )

    def fill_all(value: Any) -> Any:
        if isinstance(value, str):
            return fill(value)
        if isinstance(value, dict):
            return {key: fill_all(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill_all(item) for item in value]
        return value

    rendered: list[dict[str, Any]] = []
    for message in prompt.messages:
        if "content" in message:
            rendered.append({"role": message["role"], "content": fill_all(message["content"])})
        else:
            rendered.append({"role": message["role"], "text": fill(message["text"])})
    return rendered


@transaction.atomic
def upstream_server_save(*, server: UpstreamServer, actor: Any = None, request: Any = None) -> UpstreamServer:
    """Save an upstream server's settings (staff); the credential is never part of the audit detail."""
    if not server.url.startswith(("http://", "https://")):
        raise InvalidTool("An upstream MCP server needs an http:// or https:// URL.", details={"field": "url"})
    creating = server._state.adding
    server.save()
    audit_record(
        action="upstream.create" if creating else "upstream.update",
        actor=actor,
        target=server,
        request=request,
        detail={"name": server.name, "url": server.url, "transport": server.transport, "enabled": server.enabled},
    )
    for kind in ("tools", "prompts", "resources"):
        registry_changed(kind, None)
    return server


@transaction.atomic
def upstream_circuit_reset(*, server: UpstreamServer, actor: Any = None, request: Any = None) -> None:
    """Close the breaker by hand (staff know the server is back)."""
    UpstreamServer.objects.filter(pk=server.pk).update(consecutive_failures=0, circuit_opened_at=None, last_error="")
    audit_record(action="upstream.circuit_reset", actor=actor, target=server, request=request)


def tool_test(
    *, tool: Tool, arguments: dict[str, Any], workspace: Any = None, actor: Any = None, request: Any = None
) -> ToolResult:
    """Run a tool for staff from the admin, as `workspace` when given; not metered, but audited."""
    problem = arguments_error(tool, arguments)
    if problem:
        return ToolResult(text=problem, is_error=True)
    if workspace is None and tool.kind == ToolKind.BUILTIN:
        return ToolResult(text="A built-in tool runs for a workspace: choose one to test it as.", is_error=True)
    audit_record(
        action="tool.test",
        actor=actor,
        workspace=workspace,
        target=tool,
        request=request,
        detail={"name": tool.name, "arguments": sorted(arguments)},
    )
    context = ToolContext(workspace_id=workspace.pk) if workspace else None
    return async_to_sync(tool_execute)(tool, context, arguments)


@dataclass(frozen=True)
class RenderedPrompt:
    description: str
    messages: list[dict[str, Any]]  # MCP PromptMessage objects: {"role", "content": {"type": "text", "text"}}


async def prompt_get_async(
    *, workspace_id: Any, name: str, arguments: dict[str, str], reuse_connections: bool = False
) -> RenderedPrompt:
    """A prompt this workspace can see, rendered: here for our own prompts, by its server for imported ones."""
    prompt = await run_sync(_visible_prompt)(workspace_id, name)
    if prompt.upstream_id is None:
        messages = prompt_render(prompt=prompt, arguments=arguments)
        return RenderedPrompt(
            description=prompt.description,
            messages=[
                {
                    "role": message["role"],
                    "content": message.get("content") or {"type": "text", "text": message["text"]},
                }
                for message in messages
            ],
        )
    result = await upstream_prompt_get(prompt, arguments, reuse=reuse_connections)
    return RenderedPrompt(
        description=result.description or prompt.description,
        messages=[message.model_dump(by_alias=True, exclude_none=True, mode="json") for message in result.messages],
    )


def prompt_get(*, workspace_id: Any, name: str, arguments: dict[str, str]) -> RenderedPrompt:
    return async_to_sync(prompt_get_async)(workspace_id=workspace_id, name=name, arguments=arguments)


def _visible_prompt(workspace_id: Any, name: str) -> Prompt:
    prompt = visible_prompts(workspace_id=workspace_id).select_related("upstream").filter(name=name).first()
    if prompt is None or (prompt.upstream is not None and not prompt.upstream.enabled):
        raise PromptNotFound(f"No prompt named {name!r} is available to this workspace.")
    return prompt
