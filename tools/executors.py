"""Calling a tool: check it is visible, validate the arguments, take the quota, run it under its timeout, and turn
every failure the caller can act on into a result with `is_error` (protocol and auth errors stay exceptions for the
transport).

The core is async (`tool_call_async`, what the MCP endpoint awaits); sync code (built-ins, HTTP tools, the ORM) runs
through `sync_to_async`. `tool_call` is the same thing for sync callers (console, REST API, Celery).
"""

import asyncio
import inspect
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
from asgiref.sync import async_to_sync

from billing.models import Metric
from billing.quotas import QuotaExceeded, usage_consume
from core.errors import ToolportError
from core.outbound import OutboundRefused, ResponseTooLarge, fetch
from core.threads import run_sync
from monitoring.calls import CallStatus, ToolCall, key_id, tool_call_observe
from tools.builtins import ToolContext, ToolResult, builtin_get
from tools.errors import ToolNotFound
from tools.models import Tool, ToolKind
from tools.selectors import visible_tool_get
from tools.upstream import upstream_tool_call

MAX_HTTP_RESPONSE_BYTES = 1024 * 1024
ERROR_SNIPPET = 300


def _admit(workspace_id: Any, name: str, api_key: Any, cached_plan: bool) -> Tool:
    tool = visible_tool_get(workspace_id=workspace_id, name=name, api_key=api_key, cached_plan=cached_plan)
    if tool is None:
        raise ToolNotFound(f"No tool named {name!r} is available to this key.")
    return tool


def _consume(workspace_id: Any, tool: Tool) -> None:
    usage_consume(workspace_id=workspace_id, metric=Metric.API_CALLS)
    if tool.ai_operation_cost:
        usage_consume(workspace_id=workspace_id, metric=Metric.AI_OPERATIONS, amount=tool.ai_operation_cost)


_validators: dict[tuple[Any, Any], jsonschema.Draft202012Validator] = {}


def _validator(tool: Tool) -> jsonschema.Draft202012Validator:
    """The tool's argument validator, built once per version of the tool (its schema was checked when saved)."""
    key = (tool.pk, tool.updated_at)
    validator = _validators.get(key)
    if validator is None:
        if len(_validators) > 2048:
            _validators.clear()
        validator = _validators[key] = jsonschema.Draft202012Validator(tool.input_schema)
    return validator


def arguments_valid(tool: Tool, arguments: dict[str, Any]) -> bool:
    return bool(_validator(tool).is_valid(arguments))


def arguments_error(tool: Tool, arguments: dict[str, Any]) -> str | None:
    validator = _validator(tool)
    if validator.is_valid(arguments):  # the common case, without collecting errors to rank
        return None
    error = jsonschema.exceptions.best_match(_validator(tool).iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "the arguments"
    return f"Invalid arguments for {tool.name}: {where}: {error.message}"


async def tool_call_async(
    *,
    workspace_id: Any,
    name: str,
    arguments: dict[str, Any],
    api_key: Any = None,
    reuse_connections: bool = False,
    mcp: Any = None,
) -> ToolResult:
    """Run a tool for a workspace (and key). Raises ToolNotFound or QuotaExceeded; anything else is a result.

    `reuse_connections` is for the long-lived MCP endpoint: upstream MCP connections stay open on this event loop
    and the plan is read from the process's cached quota policy. `mcp` is the MCP request's back channel, for tools
    that report progress or ask the client something."""
    tool = await run_sync(_admit)(workspace_id, name, api_key, reuse_connections)
    problem = arguments_error(tool, arguments)
    if problem:
        return ToolResult(text=problem, is_error=True)
    await run_sync(_consume)(workspace_id, tool)
    context = ToolContext(workspace_id=workspace_id, api_key=api_key, mcp=mcp)
    return await tool_execute(tool, context, arguments, reuse_connections=reuse_connections)


def tool_call(
    *, workspace_id: Any, name: str, arguments: dict[str, Any], api_key: Any = None, transport: str | None = None
) -> ToolResult:
    """`tool_call_async` for sync callers. With `transport` (the REST API, the console) the call is observed like an
    MCP call: usage events and metrics."""
    started = time.perf_counter()
    status = CallStatus.ERROR
    try:
        result = async_to_sync(tool_call_async)(
            workspace_id=workspace_id, name=name, arguments=arguments, api_key=api_key
        )
        status = CallStatus.TOOL_ERROR if result.is_error else CallStatus.OK
        return result
    except ToolNotFound:
        status = CallStatus.DENIED
        raise
    except QuotaExceeded:
        status = CallStatus.QUOTA
        raise
    finally:
        if transport is not None:
            tool_call_observe(
                ToolCall(
                    workspace_id=workspace_id,
                    tool=name,
                    status=status,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    transport=transport,
                    api_key_id=key_id(api_key),
                )
            )


async def tool_execute(
    tool: Tool, context: ToolContext | None, arguments: dict[str, Any], *, reuse_connections: bool = False
) -> ToolResult:
    """Run a tool that was already admitted (or that staff test from the admin), under its timeout."""
    try:
        async with asyncio.timeout(tool.timeout_seconds):  # (asyncio's: a fraction of anyio.fail_after's cost)
            return await _execute(tool, context, arguments, reuse_connections)
    except TimeoutError:
        return ToolResult(text=f"{tool.name} did not finish within {tool.timeout_seconds} s.", is_error=True)
    except ToolportError as error:
        return ToolResult(text=error.message, is_error=True)


async def _execute(tool: Tool, context: ToolContext | None, arguments: dict[str, Any], reuse: bool) -> ToolResult:
    if tool.kind == ToolKind.BUILTIN:
        builtin = builtin_get(tool.builtin_name or tool.name)
        if builtin is None or context is None:
            return ToolResult(text=f"The built-in tool {tool.name} is not installed on this server.", is_error=True)
        if inspect.iscoroutinefunction(builtin.function):
            return await builtin.function(context, arguments)
        return await run_sync(builtin.function)(context, arguments)  # type: ignore[return-value]
    if tool.kind == ToolKind.HTTP:
        return await run_sync(http_tool_call)(tool, arguments)
    if tool.upstream is None or not tool.upstream.enabled:
        return ToolResult(text=f"The upstream server of {tool.name} is disabled.", is_error=True)
    return await upstream_tool_call(tool, arguments, reuse=reuse)


def http_tool_call(tool: Tool, arguments: dict[str, Any]) -> ToolResult:
    """REST → MCP: fill the URL template, send the rest as query (GET/DELETE) or JSON body, map the answer."""
    used = {key for key in arguments if "{" + key + "}" in tool.http_url_template}
    url = tool.http_url_template
    for key in used:
        url = url.replace("{" + key + "}", quote(str(arguments[key]), safe=""))
    rest = {key: value for key, value in arguments.items() if key not in used}
    method = (tool.http_method or "GET").upper()
    headers = {str(key): str(value) for key, value in (tool.http_headers or {}).items()}
    if tool.http_credentials:
        headers["Authorization"] = tool.http_credentials
    request: dict[str, Any] = {"headers": headers, "timeout": float(tool.timeout_seconds)}
    if method in ("GET", "DELETE", "HEAD"):
        request["params"] = {key: value if isinstance(value, str) else json.dumps(value) for key, value in rest.items()}
    else:
        request["json"] = rest
    try:
        response, body = fetch(method, url, max_bytes=MAX_HTTP_RESPONSE_BYTES, **request)
    except (OutboundRefused, ResponseTooLarge) as error:
        return ToolResult(text=error.message, is_error=True)
    except httpx.TimeoutException:
        return ToolResult(text=f"{tool.name} did not answer within {tool.timeout_seconds} s.", is_error=True)
    except httpx.HTTPError as error:
        return ToolResult(text=f"{tool.name} could not be reached: {type(error).__name__}.", is_error=True)
    text = body.decode(response.encoding or "utf-8", errors="replace")
    if response.status_code >= 400:
        return ToolResult(text=f"The service answered {response.status_code}: {text[:ERROR_SNIPPET]}", is_error=True)
    structured = None
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        structured = parsed if isinstance(parsed, dict) else ({"result": parsed} if parsed is not None else None)
    return ToolResult(text=text, structured=structured)
