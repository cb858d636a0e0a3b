"""The fixture the official MCP conformance suite expects (`@modelcontextprotocol/conformance`, server mode).

Loaded only when `MCP_CONFORMANCE_WORKSPACE` is set, which only `config.settings.conformance` does. The suite sends
no credentials: `conformance_asgi` (wrapped around the application by config/asgi.py in that mode only) gives every
request without one the fixture workspace's API key, a real key on the Enterprise plan issued by its owner through
the product's own service. The endpoint's authentication knows nothing of this mode. Never in production settings.

The fixture goes through the product's own parts: its tools are built-in tools (registered, mirrored as Tool rows,
called through the executor with quota and metering), its prompts are Prompt rows, its resources come from a
resource provider.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import mcp_types as types
from django.conf import settings

from accounts.models import SecurityLevel, Workspace
from core.errors import InvalidInput
from tools.builtins import ToolContext, ToolResult, builtin_tool
from tools.models import Prompt
from tools.resources import ResourceCaller, resource_provider_register

RED_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
SILENT_WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
LOGGER = "conformance-test-server"
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}

_key: str | None = None


def conformance_key(name: str) -> str:
    """The fixture workspace's API key (the workspace, its owner, plan, prompts and key made on first use)."""
    global _key
    if _key is None:
        from accounts.api_keys import api_key_issue
        from accounts.models import Membership, Role, User
        from billing.models import Plan, Tier
        from billing.quotas import billing_account_get, quota_policy_forget
        from tools.services import builtin_tools_sync

        owner, _created = User.objects.get_or_create(email=f"conformance-{name}@toolport.invalid")
        workspace, _created = Workspace.objects.get_or_create(name=f"Conformance {name}")
        membership, _created = Membership.objects.get_or_create(
            workspace=workspace, user=owner, defaults={"role": Role.OWNER}
        )
        account = billing_account_get(workspace_id=workspace.pk)
        account.plan = Plan.objects.get(tier=Tier.ENTERPRISE)  # the suite's bursts stay under every limit
        account.save()
        quota_policy_forget(workspace_id=workspace.pk)
        builtin_tools_sync()
        _prompts_ensure()
        _key = api_key_issue(actor=membership, name="Conformance suite").secret
    return _key


def conformance_asgi(application: Any) -> Any:
    """The application, with the fixture key added to every request that carries no credential."""
    from core.threads import run_sync

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            names = {name.lower() for name, _value in scope.get("headers", [])}
            if b"authorization" not in names and b"x-api-key" not in names:
                key = _key or await run_sync(conformance_key)(settings.MCP_CONFORMANCE_WORKSPACE)
                headers = [*scope.get("headers", []), (b"authorization", f"Bearer {key}".encode())]
                scope = {**scope, "headers": headers}
        await application(scope, receive, send)

    return wrapped


def _tool(name: str, description: str, input_schema: dict[str, Any] | None = None) -> Any:
    return builtin_tool(
        name=name,
        title=name,
        description=description,
        input_schema=input_schema or NO_ARGUMENTS,
        security_level=SecurityLevel.PUBLIC,
    )


def _needs_mcp(context: ToolContext) -> Any:
    if context.mcp is None:
        raise InvalidInput("This fixture tool talks back to an MCP client; call it over MCP.")
    return context.mcp


@_tool("test_simple_text", "Returns a simple text response.")
async def simple_text(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(text="This is a simple text response for testing.")


@_tool("test_image_content", "Returns an image.")
async def image_content(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(text="", images=[(base64.b64decode(RED_PIXEL_PNG), "image/png")])


@_tool("test_audio_content", "Returns audio.")
async def audio_content(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(text="", extra_content=[{"type": "audio", "data": SILENT_WAV, "mimeType": "audio/wav"}])


@_tool("test_embedded_resource", "Returns an embedded resource.")
async def embedded_resource(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    resource = {
        "uri": "test://embedded-resource",
        "mimeType": "text/plain",
        "text": "This is an embedded resource content.",
    }
    return ToolResult(text="", extra_content=[{"type": "resource", "resource": resource}])


@_tool("test_multiple_content_types", "Returns text, an image and a resource.")
async def multiple_content_types(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    resource = {
        "uri": "test://mixed-content-resource",
        "mimeType": "application/json",
        "text": json.dumps({"test": "data", "value": 123}),
    }
    return ToolResult(
        text="Multiple content types test:",
        images=[(base64.b64decode(RED_PIXEL_PNG), "image/png")],
        extra_content=[{"type": "resource", "resource": resource}],
    )


@_tool("test_tool_with_logging", "Sends three log messages while it runs.")
async def tool_with_logging(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    mcp = _needs_mcp(context)
    for step, text in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
        if step:
            await asyncio.sleep(0.05)
        await mcp.log("info", text, LOGGER)
    return ToolResult(text="Tool with logging executed successfully")


@_tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100.")
async def tool_with_progress(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    mcp = _needs_mcp(context)
    for step, value in enumerate((0, 50, 100)):
        if step:
            await asyncio.sleep(0.05)
        await mcp.progress(value, 100, f"Completed step {value} of 100")
    return ToolResult(text="Tool with progress executed successfully")


@_tool("test_error_handling", "Always fails.")
async def error_handling(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(text="This tool intentionally returns an error for testing", is_error=True)


@_tool(
    "test_sampling",
    "Asks the client's model to answer a prompt.",
    {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
)
async def sampling(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    mcp = _needs_mcp(context)
    if not mcp.client_supports("sampling"):
        return ToolResult(text="The client does not support sampling.", is_error=True)
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=arguments["prompt"]))
    answer = await mcp.sample([message], max_tokens=100)
    text = getattr(answer.content, "text", str(answer.content))
    return ToolResult(text=f"LLM response: {text}")


async def _elicit(context: ToolContext, message: str, schema: dict[str, Any], prefix: str) -> ToolResult:
    mcp = _needs_mcp(context)
    if not mcp.client_supports("elicitation"):
        return ToolResult(text="The client does not support elicitation.", is_error=True)
    answer = await mcp.elicit(message, schema)
    return ToolResult(text=f"{prefix}: action={answer.action}, content={json.dumps(answer.content)}")


@_tool(
    "test_elicitation",
    "Asks the user for a username and an email.",
    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)
async def elicitation(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    return await _elicit(context, arguments["message"], schema, "User response")


@_tool("test_elicitation_sep1034_defaults", "Asks for values, with defaults for every primitive type.")
async def elicitation_defaults(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": True},
        },
        "required": [],
    }
    message = "Please review and update the form fields with defaults"
    return await _elicit(context, message, schema, "Elicitation completed")


@_tool("test_elicitation_sep1330_enums", "Asks for choices of every enum style.")
async def elicitation_enums(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    titled = [{"const": "value1", "title": "First"}, {"const": "value2", "title": "Second"}]
    titled.append({"const": "value3", "title": "Third"})
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": titled},
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": titled}},
        },
        "required": [],
    }
    return await _elicit(context, "Please choose", schema, "Elicitation completed")


@_tool(
    "json_schema_2020_12_tool",
    "Tool with JSON Schema 2020-12 features",
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": False,
    },
)
async def json_schema_tool(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(text=f"Received: {json.dumps(arguments)}")


# --- prompts ----------------------------------------------------------------------------------------------------------


def _prompts_ensure() -> None:
    image = {"type": "image", "data": RED_PIXEL_PNG, "mimeType": "image/png"}
    embedded = {
        "type": "resource",
        "resource": {
            "uri": "{resourceUri}",
            "mimeType": "text/plain",
            "text": "Embedded resource content for testing.",
        },
    }
    fixtures: dict[str, tuple[str, list[tuple[str, str]], list[tuple[str, Any]]]] = {
        "test_simple_prompt": (
            "A simple prompt without arguments",
            [],
            [("user", "This is a simple prompt for testing.")],
        ),
        "test_prompt_with_arguments": (
            "A prompt with required arguments",
            [("arg1", "First test argument"), ("arg2", "Second test argument")],
            [("user", "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")],
        ),
        "test_prompt_with_embedded_resource": (
            "A prompt with an embedded resource",
            [("resourceUri", "URI of the resource to embed")],
            [("user", embedded), ("user", "Please process the embedded resource above.")],
        ),
        "test_prompt_with_image": (
            "A prompt with an image",
            [],
            [("user", image), ("user", "Please analyze the image above.")],
        ),
    }
    for name, (description, arguments, messages) in fixtures.items():
        Prompt.objects.update_or_create(
            workspace=None,
            name=name,
            defaults={
                "description": description,
                "arguments": [{"name": arg, "description": text, "required": True} for arg, text in arguments],
                "messages": [
                    {"role": role, "text": body} if isinstance(body, str) else {"role": role, "content": body}
                    for role, body in messages
                ],
            },
        )


# --- resources --------------------------------------------------------------------------------------------------------

TEMPLATE = re.compile(r"^test://template/(?P<id>[^/]+)/data$")


class ConformanceResources:
    def resources(self, caller: ResourceCaller) -> list[types.Resource]:
        return [
            types.Resource(
                uri="test://static-text",
                name="Static Text Resource",
                description="A static text resource for testing",
                mime_type="text/plain",
            ),
            types.Resource(
                uri="test://static-binary",
                name="Static Binary Resource",
                description="A static binary resource (image) for testing",
                mime_type="image/png",
            ),
            types.Resource(
                uri="test://watched-resource",
                name="Watched Resource",
                description="A resource that can be subscribed to",
                mime_type="text/plain",
            ),
        ]

    def templates(self, caller: ResourceCaller) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uri_template="test://template/{id}/data",
                name="Resource Template",
                description="A resource template with parameter substitution",
                mime_type="application/json",
            )
        ]

    async def read(self, caller: ResourceCaller, uri: str) -> types.ReadResourceResult | None:
        contents: dict[str, Any]
        if uri == "test://static-text":
            contents = {
                "uri": uri,
                "mimeType": "text/plain",
                "text": "This is the content of the static text resource.",
            }
        elif uri == "test://static-binary":
            contents = {"uri": uri, "mimeType": "image/png", "blob": RED_PIXEL_PNG}
        elif uri == "test://watched-resource":
            contents = {"uri": uri, "mimeType": "text/plain", "text": "Watched resource content"}
        elif match := TEMPLATE.match(uri):
            data = {"id": match["id"], "templateTest": True, "data": f"Data for ID: {match['id']}"}
            contents = {"uri": uri, "mimeType": "application/json", "text": json.dumps(data, separators=(",", ":"))}
        else:
            return None
        return types.ReadResourceResult.model_validate({"contents": [contents]})

    async def complete(
        self, caller: ResourceCaller, reference: Any, argument: str, value: str, context: dict[str, str]
    ) -> list[str] | None:
        if getattr(reference, "name", None) == "test_prompt_with_arguments":
            return ["paris", "park", "party", "test", "testing"]
        return None


resource_provider_register(ConformanceResources())
