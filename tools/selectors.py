"""Reads on the registry. `visible_tools` is the one answer to "which tools may this caller see and call"; the MCP
endpoint, the console and the API all use it."""

from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.quotas import billing_account_get, effective_plan, quota_policy
from tools.models import Prompt, Tool


def visible_tools(*, workspace_id: UUID, api_key: Any = None, cached_plan: bool = False) -> QuerySet[Tool]:
    """Enabled tools that are global or the workspace's own (when its plan allows custom tools), at or below the
    plan's security level, narrowed by the API key's scopes (tool names, highest level, read-only).

    `cached_plan` reads the plan from this process's quota policy (up to POLICY_CACHE_SECONDS old) instead of the
    database: the MCP endpoint's hot path uses it; pages and the REST API read the plan fresh."""
    plan: Any = (
        quota_policy(workspace_id=workspace_id)
        if cached_plan
        else effective_plan(billing_account_get(workspace_id=workspace_id), timezone.now())
    )
    owners = Q(workspace__isnull=True)
    if plan.custom_tools_allowed:
        owners |= Q(workspace_id=workspace_id)
    level = plan.max_security_level
    tools = Tool.objects.filter(owners, enabled=True)
    if api_key is not None:
        level = min(level, api_key.max_security_level)
        if api_key.tools:
            tools = tools.filter(name__in=api_key.tools)
        if api_key.read_only:
            tools = tools.filter(annotations__readOnlyHint=True)
    return tools.filter(security_level__lte=level).select_related("upstream").order_by("name")


def visible_tool_get(*, workspace_id: UUID, name: str, api_key: Any = None, cached_plan: bool = False) -> Tool | None:
    tools = visible_tools(workspace_id=workspace_id, api_key=api_key, cached_plan=cached_plan)
    return tools.filter(name=name).first()


def visible_prompts(*, workspace_id: UUID) -> QuerySet[Prompt]:
    return Prompt.objects.filter(Q(workspace__isnull=True) | Q(workspace_id=workspace_id), enabled=True).order_by(
        "name"
    )
