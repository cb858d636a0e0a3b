"""Upstream MCP servers: their tools, prompts and resources are imported under `<server>__<name>` and called through
the official SDK's client.

- Only the server's own configured credential is sent (as its Authorization header); nothing of the calling
  client's (its API key, its headers) ever reaches an upstream server.
- Every connection goes through the SSRF guard (`core.outbound.guarded_async_client_mcp`).
- A circuit breaker per server lives in PostgreSQL, so every replica and worker sees the same state: it opens after
  `UPSTREAM_CIRCUIT_FAILURES` consecutive failures, refuses calls at once while open, and after
  `UPSTREAM_CIRCUIT_RESET_SECONDS` lets exactly one trial call through (half-open); a success closes it.
- Long-lived async callers (the MCP endpoint) reuse one SDK client per server and event loop (`reuse=True`); sync
  callers (console, REST, Celery) open a connection per call.
"""

from __future__ import annotations

import asyncio
import base64
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx2
import jsonschema
import mcp_types
import structlog
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from core.audit import audit_record
from core.errors import ToolportError, Unavailable
from core.outbound import OutboundRefused, check_url, guarded_async_client_mcp
from core.threads import run_sync
from tools.builtins import ToolResult
from tools.events import registry_changed
from tools.models import MCP_NAME_PATTERN, Prompt, Tool, ToolKind, UpstreamResource, UpstreamServer, UpstreamTransport

logger = structlog.get_logger(__name__)

SEPARATOR = "__"
ANNOTATION_HINTS = {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
PAGE_LIMIT = 50  # pages followed when listing an upstream server's tools, prompts or resources


class UpstreamUnavailable(Unavailable):
    code = "upstream_unavailable"


# --- Connecting -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """What a connection needs, read from the row once (so async code never touches the ORM)."""

    id: Any
    name: str
    url: str
    transport: str
    credentials: str
    version: datetime | None

    @classmethod
    def of(cls, server: UpstreamServer) -> Endpoint:
        return cls(server.pk, server.name, server.url, server.transport, server.credentials, server.updated_at)


@asynccontextmanager
async def upstream_client(endpoint: Endpoint) -> AsyncIterator[Client]:
    """A connected SDK client for the server, carrying only the server's own credential."""
    headers = {"Authorization": endpoint.credentials} if endpoint.credentials else {}
    connect = settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS
    await sync_to_async(check_url, thread_sensitive=False)(endpoint.url)
    if endpoint.transport == UpstreamTransport.SSE:
        transport: Any = sse_client(
            endpoint.url, headers=headers, timeout=connect, httpx_client_factory=guarded_async_client_mcp
        )
        mode = "legacy"
    else:
        http = guarded_async_client_mcp(headers=headers, timeout=httpx2.Timeout(connect, read=300.0))
        transport = streamable_http_client(endpoint.url, http_client=http)
        mode = "auto"
    info = mcp_types.Implementation(name="toolport", version="1.0")
    async with Client(transport, mode=mode, cache=None, client_info=info) as client:
        yield client


class _Connection:
    """One long-lived client, entered and exited by its own task (anyio scopes must close where they opened)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.client: Client | None = None
        self.error: BaseException | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._hold())

    async def _hold(self) -> None:
        try:
            async with upstream_client(self.endpoint) as client:
                self.client = client
                self._ready.set()
                await self._stop.wait()
        except Exception as error:  # kept for the caller, which reports it
            self.error = error
        finally:
            self.client = None
            self._ready.set()

    async def ready(self) -> Client:
        await self._ready.wait()
        if self.client is None:
            raise self.error or UpstreamUnavailable(f"The connection to {self.endpoint.name} closed.")
        return self.client

    def close(self) -> None:
        self._stop.set()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, _Connection]] = weakref.WeakKeyDictionary()


def _pooled(endpoint: Endpoint) -> _Connection:
    pool = _pools.setdefault(asyncio.get_running_loop(), {})
    connection = pool.get(endpoint.id)
    if connection is None or connection.endpoint != endpoint or connection.error is not None:
        if connection is not None:
            connection.close()
        connection = pool[endpoint.id] = _Connection(endpoint)
    return connection


def _discard(endpoint: Endpoint) -> None:
    pool = _pools.get(asyncio.get_running_loop(), {})
    connection = pool.pop(endpoint.id, None)
    if connection is not None:
        connection.close()


async def upstream_pool_close() -> None:
    """Close this event loop's reused connections (the MCP endpoint calls it on shutdown)."""
    for connection in _pools.pop(asyncio.get_running_loop(), {}).values():
        connection.close()
        await connection._task


async def _with_client(endpoint: Endpoint, reuse: bool, operation: Any) -> Any:
    """Run `operation(client)`; a reused connection that broke is replaced once before the failure counts."""
    if not reuse:
        async with upstream_client(endpoint) as client:
            return await operation(client)
    for attempt in (1, 2):
        connection = _pooled(endpoint)
        try:
            return await operation(await connection.ready())
        except MCPError:
            raise
        except Exception:
            _discard(endpoint)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def describe_failure(error: BaseException) -> str:
    """A sentence about why a server could not be used, from the innermost cause (SDK errors nest in groups)."""
    leaves: list[BaseException] = []

    def walk(item: BaseException) -> None:
        if isinstance(item, BaseExceptionGroup):
            for inner in item.exceptions:
                walk(inner)
        else:
            leaves.append(item)

    walk(error)
    for leaf in leaves:
        cause: BaseException | None = leaf
        while cause is not None:
            if isinstance(cause, ToolportError):
                return cause.message
            cause = cause.__cause__ or cause.__context__
    leaf = leaves[0] if leaves else error
    if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        return "it did not answer in time"
    if isinstance(leaf, httpx2.HTTPStatusError):
        return f"it answered HTTP {leaf.response.status_code}"
    if isinstance(leaf, httpx2.ConnectError):
        return str(leaf) or "the connection was refused"
    if isinstance(leaf, MCPError):
        return leaf.error.message
    return f"{type(leaf).__name__}: {leaf}"[:300]


# --- Circuit breaker (state in PostgreSQL) ----------------------------------------------------------------------------


def circuit_admit(server_id: Any) -> int:
    """0 if a call may go ahead now, else the seconds until the server will be tried again.

    When the breaker is half-open, one caller wins the trial by moving `circuit_opened_at` to now (an atomic
    conditional UPDATE); everyone else keeps seeing it open until the trial has succeeded or the reset time passed.
    """
    server = UpstreamServer.objects.only("circuit_opened_at").get(pk=server_id)
    if server.circuit_opened_at is None:
        return 0
    now = timezone.now()
    reopen = server.circuit_opened_at + timedelta(seconds=settings.UPSTREAM_CIRCUIT_RESET_SECONDS)
    if now < reopen:
        return max(1, int((reopen - now).total_seconds() + 0.999))
    won = UpstreamServer.objects.filter(pk=server_id, circuit_opened_at=server.circuit_opened_at).update(
        circuit_opened_at=now
    )
    return 0 if won else settings.UPSTREAM_CIRCUIT_RESET_SECONDS


def circuit_success(server_id: Any) -> None:
    UpstreamServer.objects.filter(
        Q(consecutive_failures__gt=0) | Q(circuit_opened_at__isnull=False), pk=server_id
    ).update(consecutive_failures=0, circuit_opened_at=None, last_error="")


def circuit_failure(server_id: Any, reason: str) -> None:
    threshold = settings.UPSTREAM_CIRCUIT_FAILURES
    now = timezone.now()
    UpstreamServer.objects.filter(pk=server_id).update(
        consecutive_failures=F("consecutive_failures") + 1,
        last_error=reason[:500],
        circuit_opened_at=Case(
            When(consecutive_failures__gte=threshold - 1, then=Value(now)), default=F("circuit_opened_at")
        ),
    )
    server = UpstreamServer.objects.only("name", "consecutive_failures").get(pk=server_id)
    if server.consecutive_failures == threshold:
        logger.warning("upstream.circuit_opened", server=server.name, reason=reason)


# --- Calling ----------------------------------------------------------------------------------------------------------


@dataclass
class _Guarded:
    """Outcome of one guarded upstream operation: its value, or a message for the user."""

    value: Any = None
    refusal: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


async def _guarded(endpoint: Endpoint, timeout: float, reuse: bool, operation: Any) -> _Guarded:
    wait = await run_sync(circuit_admit)(endpoint.id)
    if wait:
        return _Guarded(
            refusal=f"The upstream server {endpoint.name} is failing, so Toolport stopped calling it for now. "
            f"It will be tried again in {wait} s."
        )
    try:
        with anyio.fail_after(timeout):
            value = await _with_client(endpoint, reuse, operation)
    except MCPError as error:
        # The server answered, with a protocol error (unknown tool, bad arguments): not a failure of the server.
        await run_sync(circuit_success)(endpoint.id)
        return _Guarded(refusal=f"{endpoint.name} refused the request: {error.error.message}")
    except Exception as error:
        reason = describe_failure(error) if not isinstance(error, TimeoutError) else f"no answer within {timeout:g} s"
        if reuse:
            _discard(endpoint)
        await run_sync(circuit_failure)(endpoint.id, reason)
        return _Guarded(refusal=f"The upstream server {endpoint.name} could not be used: {reason}.")
    await run_sync(circuit_success)(endpoint.id)
    return _Guarded(value=value)


def result_from_mcp(result: mcp_types.CallToolResult) -> ToolResult:
    """The SDK's tool result as our one result type (text, structured content, images, other blocks kept as-is)."""
    texts: list[str] = []
    images: list[tuple[bytes, str]] = []
    extra: list[dict[str, Any]] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent):
            images.append((base64.b64decode(block.data), block.mime_type))
        else:
            extra.append(block.model_dump(by_alias=True, exclude_none=True, mode="json"))
    return ToolResult(
        text="\n".join(texts),
        structured=result.structured_content,
        is_error=bool(result.is_error),
        images=images,
        extra_content=extra,
    )


async def upstream_tool_call(tool: Tool, arguments: dict[str, Any], *, reuse: bool = False) -> ToolResult:
    """Call an imported tool on its server (the Tool must come with `upstream` loaded)."""
    assert tool.upstream is not None
    endpoint = Endpoint.of(tool.upstream)
    remote = tool.upstream_tool_name

    async def call(client: Client) -> mcp_types.CallToolResult:
        return await client.call_tool(remote, arguments)

    outcome = await _guarded(endpoint, float(tool.timeout_seconds), reuse, call)
    if outcome.refusal:
        return ToolResult(text=outcome.refusal, is_error=True)
    return result_from_mcp(outcome.value)


async def upstream_prompt_get(prompt: Prompt, arguments: dict[str, str], *, reuse: bool = False) -> Any:
    """The upstream server's rendering of an imported prompt (`mcp_types.GetPromptResult`)."""
    assert prompt.upstream is not None
    endpoint = Endpoint.of(prompt.upstream)

    async def get(client: Client) -> mcp_types.GetPromptResult:
        return await client.get_prompt(prompt.upstream_prompt_name, arguments)

    outcome = await _guarded(endpoint, settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS * 3, reuse, get)
    if outcome.refusal:
        raise UpstreamUnavailable(outcome.refusal)
    return outcome.value


async def upstream_resource_read(resource: UpstreamResource, *, reuse: bool = False) -> Any:
    """The contents of an imported resource (`mcp_types.ReadResourceResult`)."""
    endpoint = Endpoint.of(resource.upstream)
    uri = resource.uri

    async def read(client: Client) -> mcp_types.ReadResourceResult:
        return await client.read_resource(uri)

    outcome = await _guarded(endpoint, settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS * 3, reuse, read)
    if outcome.refusal:
        raise UpstreamUnavailable(outcome.refusal)
    return outcome.value


# --- Importing --------------------------------------------------------------------------------------------------------


@dataclass
class Catalog:
    tools: list[mcp_types.Tool]
    prompts: list[mcp_types.Prompt]
    resources: list[mcp_types.Resource]


async def _catalog(client: Client) -> Catalog:
    capabilities = client.server_capabilities

    async def pages(method: Any, attribute: str) -> list[Any]:
        items: list[Any] = []
        cursor = None
        for _ in range(PAGE_LIMIT):
            page = await method(cursor=cursor) if cursor else await method()
            items.extend(getattr(page, attribute))
            cursor = page.next_cursor
            if not cursor:
                break
        return items

    return Catalog(
        tools=await pages(client.list_tools, "tools") if capabilities.tools is not None else [],
        prompts=await pages(client.list_prompts, "prompts") if capabilities.prompts is not None else [],
        resources=await pages(client.list_resources, "resources") if capabilities.resources is not None else [],
    )


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # upstream name -> why
    prompts: int = 0
    resources: int = 0

    def summary(self) -> str:
        parts = [
            f"{len(self.created)} new",
            f"{len(self.updated)} updated",
            f"{len(self.removed)} removed",
            f"{self.prompts} prompts",
            f"{self.resources} resources",
        ]
        text = "Tools: " + ", ".join(parts) + "."
        if self.skipped:
            text += " Skipped: " + "; ".join(f"{name} ({why})" for name, why in self.skipped.items()) + "."
        return text


def _skip_reason(server: UpstreamServer, remote: mcp_types.Tool, taken: set[str]) -> str | None:
    name = f"{server.name}{SEPARATOR}{remote.name}"
    if not re.fullmatch(MCP_NAME_PATTERN, name):
        return "its name is not a valid MCP tool name here"
    if name in taken:
        return "a tool with that name already exists"
    try:
        jsonschema.Draft202012Validator.check_schema(remote.input_schema)
        if remote.output_schema is not None:
            jsonschema.Draft202012Validator.check_schema(remote.output_schema)
    except jsonschema.SchemaError as error:
        return f"invalid schema: {error.message}"[:200]
    return None


def upstream_import(*, server: UpstreamServer, actor: Any = None, request: Any = None) -> ImportReport:
    """Fetch the server's tools, prompts and resources and mirror them as `<server>__<name>` rows.

    Staff's choices on imported tools (enabled, security level, timeout, AI cost) survive a refresh; what the server
    no longer lists is removed. Raises UpstreamUnavailable when the server cannot be reached (the breaker counts it).
    """
    endpoint = Endpoint.of(server)

    async def fetch() -> _Guarded:
        return await _guarded(endpoint, settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS * 3, False, _catalog)

    outcome = async_to_sync(fetch)()
    if outcome.refusal:
        UpstreamServer.objects.filter(pk=server.pk).update(last_error=outcome.refusal[:500])
        raise UpstreamUnavailable(outcome.refusal)
    catalog: Catalog = outcome.value
    report = _mirror(server, catalog)
    audit_record(
        action="upstream.sync",
        actor=actor,
        target=server,
        request=request,
        detail={
            "created": report.created,
            "removed": report.removed,
            "updated": len(report.updated),
            "skipped": report.skipped,
        },
    )
    return report


@transaction.atomic
def _mirror(server: UpstreamServer, catalog: Catalog) -> ImportReport:
    report = ImportReport()
    existing = {tool.upstream_tool_name: tool for tool in Tool.objects.select_for_update().filter(upstream=server)}
    taken = set(Tool.objects.filter(workspace__isnull=True).exclude(upstream=server).values_list("name", flat=True))
    listed: set[str] = set()
    for remote in catalog.tools:
        reason = _skip_reason(server, remote, taken)
        if reason:
            report.skipped[remote.name] = reason
            continue
        listed.add(remote.name)
        tool = existing.get(remote.name) or Tool(
            workspace=None,
            kind=ToolKind.UPSTREAM,
            upstream=server,
            upstream_tool_name=remote.name,
            security_level=server.default_security_level,
        )
        creating = tool._state.adding
        annotations = remote.annotations.model_dump(by_alias=True, exclude_none=True) if remote.annotations else {}
        tool.name = f"{server.name}{SEPARATOR}{remote.name}"
        tool.title = (remote.title or (remote.annotations.title if remote.annotations else None) or "")[:200]
        tool.description = remote.description or ""
        tool.input_schema = remote.input_schema
        tool.output_schema = remote.output_schema
        tool.annotations = {key: value for key, value in annotations.items() if key in ANNOTATION_HINTS}
        tool.save()
        (report.created if creating else report.updated).append(tool.name)
    for remote_name, tool in existing.items():
        if remote_name not in listed:
            report.removed.append(tool.name)
            tool.delete()

    Prompt.objects.filter(upstream=server).exclude(upstream_prompt_name__in=[p.name for p in catalog.prompts]).delete()
    for remote_prompt in catalog.prompts:
        name = f"{server.name}{SEPARATOR}{remote_prompt.name}"
        if not re.fullmatch(MCP_NAME_PATTERN, name):
            continue
        Prompt.objects.update_or_create(
            workspace=None,
            name=name,
            defaults={
                "upstream": server,
                "upstream_prompt_name": remote_prompt.name,
                "title": (remote_prompt.title or "")[:200],
                "description": remote_prompt.description or "",
                "arguments": [
                    {
                        "name": argument.name,
                        "description": argument.description or "",
                        "required": bool(argument.required),
                    }
                    for argument in remote_prompt.arguments or []
                ],
                "messages": [],
            },
        )
        report.prompts += 1

    uris = [str(resource.uri) for resource in catalog.resources]
    UpstreamResource.objects.filter(upstream=server).exclude(uri__in=uris).delete()
    for remote_resource in catalog.resources:
        UpstreamResource.objects.update_or_create(
            upstream=server,
            uri=str(remote_resource.uri),
            defaults={
                "name": remote_resource.name[:200],
                "title": (remote_resource.title or "")[:200],
                "description": remote_resource.description or "",
                "mime_type": remote_resource.mime_type or "",
            },
        )
        report.resources += 1

    UpstreamServer.objects.filter(pk=server.pk).update(last_sync_at=timezone.now(), last_error="")
    for kind in ("tools", "prompts", "resources"):
        registry_changed(kind, None)
    return report


def upstream_refresh_due() -> dict[str, str]:
    """Re-import every enabled server whose last sync is older than UPSTREAM_REFRESH_SECONDS (beat runs this)."""
    due_before = timezone.now() - timedelta(seconds=settings.UPSTREAM_REFRESH_SECONDS)
    outcomes: dict[str, str] = {}
    servers = UpstreamServer.objects.filter(enabled=True).filter(
        Q(last_sync_at__isnull=True) | Q(last_sync_at__lt=due_before)
    )
    for server in servers:
        try:
            outcomes[server.name] = upstream_import(server=server).summary()
        except (UpstreamUnavailable, OutboundRefused) as error:
            outcomes[server.name] = error.message
            logger.warning("upstream.refresh_failed", server=server.name, reason=error.message)
    return outcomes
