"""Resources and completions offered over MCP, from providers that apps register (upstream servers here; the
knowledge bases of `rag` later). The MCP endpoint asks every provider and merges what they answer, always for one
caller (workspace and key), so a provider decides what that caller may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import mcp_types as types
from django.db.models import Q
from django.utils import timezone

from billing.quotas import billing_account_get, effective_plan
from core.threads import run_sync
from tools.models import UpstreamResource
from tools.upstream import upstream_resource_read


@dataclass(frozen=True)
class ResourceCaller:
    workspace_id: Any
    api_key: Any = None
    reuse_connections: bool = False  # True in the long-lived MCP endpoint (see tools.upstream)


class ResourceProvider(Protocol):
    def resources(self, caller: ResourceCaller) -> list[types.Resource]:
        """The resources this caller may list (sync: may use the ORM)."""
        ...

    def templates(self, caller: ResourceCaller) -> list[types.ResourceTemplate]: ...

    async def read(self, caller: ResourceCaller, uri: str) -> types.ReadResourceResult | None:
        """The contents, or None when the URI is not this provider's (or not visible to the caller)."""
        ...

    async def complete(
        self, caller: ResourceCaller, reference: Any, argument: str, value: str, context: dict[str, str]
    ) -> list[str] | None:
        """Completion values for a prompt or template argument this provider owns, else None."""
        ...


_providers: list[ResourceProvider] = []


def resource_provider_register(provider: ResourceProvider) -> None:
    _providers.append(provider)


def resource_providers() -> list[ResourceProvider]:
    return list(_providers)


async def resources_list(caller: ResourceCaller) -> list[types.Resource]:
    found: list[types.Resource] = []
    for provider in resource_providers():
        found.extend(await run_sync(provider.resources)(caller))
    return found


async def resource_templates_list(caller: ResourceCaller) -> list[types.ResourceTemplate]:
    found: list[types.ResourceTemplate] = []
    for provider in resource_providers():
        found.extend(await run_sync(provider.templates)(caller))
    return found


async def resource_read(caller: ResourceCaller, uri: str) -> types.ReadResourceResult | None:
    for provider in resource_providers():
        result = await provider.read(caller, uri)
        if result is not None:
            return result
    return None


async def completion_values(
    caller: ResourceCaller, reference: Any, argument: str, value: str, context: dict[str, str]
) -> list[str]:
    for provider in resource_providers():
        values = await provider.complete(caller, reference, argument, value, context)
        if values is not None:
            return values
    return []


class UpstreamResources:
    """Resources imported from upstream MCP servers; visible to workspaces whose plan (and key) reach the server's
    default security level, read through the server."""

    def _visible(self, caller: ResourceCaller) -> Any:
        plan = effective_plan(billing_account_get(workspace_id=caller.workspace_id), timezone.now())
        level = plan.max_security_level
        if caller.api_key is not None:
            level = min(level, caller.api_key.max_security_level)
        return UpstreamResource.objects.filter(
            Q(upstream__enabled=True), upstream__default_security_level__lte=level
        ).select_related("upstream")

    def resources(self, caller: ResourceCaller) -> list[types.Resource]:
        return [
            types.Resource(
                uri=resource.uri,
                name=resource.name,
                title=resource.title or None,
                description=resource.description or None,
                mime_type=resource.mime_type or None,
            )
            for resource in self._visible(caller)
        ]

    def templates(self, caller: ResourceCaller) -> list[types.ResourceTemplate]:
        return []

    async def read(self, caller: ResourceCaller, uri: str) -> types.ReadResourceResult | None:
        resource = await run_sync(lambda: self._visible(caller).filter(uri=uri).first())()
        if resource is None:
            return None
        result: types.ReadResourceResult = await upstream_resource_read(resource, reuse=caller.reuse_connections)
        return result

    async def complete(
        self, caller: ResourceCaller, reference: Any, argument: str, value: str, context: dict[str, str]
    ) -> list[str] | None:
        return None


resource_provider_register(UpstreamResources())
