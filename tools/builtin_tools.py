"""The built-in tools every workspace gets: who am I, my usage, finding the right tool, and an echo."""

import re
from typing import Any

from accounts.models import Workspace
from billing.quotas import billing_account_get, quota_usage
from tools.builtins import ToolContext, ToolResult, builtin_tool
from tools.selectors import visible_tools

_WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about what a tool does: matching them ranks every tool whose description has an "in".
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "what",
        "when",
        "where",
        "which",
        "with",
        "you",
        "your",
    ]
)


def _usage(workspace_id: Any) -> list[dict[str, Any]]:
    return [
        {
            "metric": quota.metric,
            "used": quota.used,
            "limit": quota.limit,
            "remaining": quota.remaining,
            "resets_at": quota.resets_at.isoformat(),
        }
        for quota in quota_usage(workspace_id=workspace_id)
    ]


@builtin_tool(
    name="whoami",
    title="Who am I",
    description="The workspace this API key belongs to, its plan, and how much of each monthly quota remains.",
)
def whoami(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    workspace = Workspace.objects.get(pk=context.workspace_id)
    account = billing_account_get(workspace_id=context.workspace_id)
    quotas = _usage(context.workspace_id)
    structured = {
        "workspace": {"id": str(workspace.pk), "name": workspace.name},
        "plan": account.plan.tier,
        "key": getattr(context.api_key, "prefix", None),
        "quotas": quotas,
    }
    lines = [f"Workspace {workspace.name} on the {account.plan.name} plan."]
    lines += [
        f"{quota['metric']}: {quota['used']:,} used, "
        + ("unlimited" if quota["limit"] is None else f"{quota['remaining']:,} of {quota['limit']:,} left")
        for quota in quotas
    ]
    return ToolResult(text="\n".join(lines), structured=structured)


@builtin_tool(
    name="get_usage",
    title="Usage this period",
    description="API calls, AI operations and storage used this billing period, with limits and the reset time.",
)
def get_usage(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    usage = _usage(context.workspace_id)
    lines = []
    for quota in usage:
        limit = "unlimited" if quota["limit"] is None else f"{quota['limit']:,}"
        lines.append(f"{quota['metric']}: {quota['used']:,} of {limit} (resets {quota['resets_at']})")
    text = "\n".join(lines)
    return ToolResult(text=text, structured={"usage": usage})


@builtin_tool(
    name="find_tools",
    title="Find tools",
    description="Search the tools this key can use by what they do; returns the best matches with descriptions.",
    input_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "description": "What you want to do, in a few words."},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
def find_tools(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    """Keyword ranking over names (weight 3), titles (2) and descriptions (1) until the RAG embedder exists."""
    terms = set(_WORD.findall(str(arguments.get("query", "")).lower())) - _STOPWORDS
    top_k = int(arguments.get("top_k", 5))
    scored = []
    for tool in visible_tools(workspace_id=context.workspace_id, api_key=context.api_key):
        fields = ((tool.name.replace("_", " "), 3), (tool.title, 2), (tool.description, 1))
        score = sum(weight * len(terms & set(_WORD.findall(text.lower()))) for text, weight in fields)
        if score:
            scored.append((score, tool.name, tool))
    scored.sort(key=lambda item: (-item[0], item[1]))
    matches = [
        {"name": tool.name, "title": tool.title, "description": tool.description} for _s, _n, tool in scored[:top_k]
    ]
    text = "\n".join(f"{m['name']}: {m['description']}" for m in matches) or "No tool matches that description."
    return ToolResult(text=text, structured={"tools": matches})


@builtin_tool(
    name="echo",
    title="Echo",
    description="Returns the text it is given. Use it to check that a client reaches Toolport with its key.",
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 10000}},
        "required": ["text"],
        "additionalProperties": False,
    },
)
async def echo(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    return ToolResult(text=arguments["text"])
