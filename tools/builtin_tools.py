"""The built-in tools every workspace gets: who am I, my usage, finding the right tool, and an echo."""

import logging
import re
from typing import Any

from accounts.models import Workspace
from billing.quotas import billing_account_get, quota_usage
from tools.builtins import ToolContext, ToolResult, builtin_tool, tool_ranker
from tools.selectors import visible_tools

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+")
RRF_K = 60
SIMILARITY_MIN = 0.25  # cosine, all-MiniLM-L6-v2: below it a tool is about something else ("zzzz" tops at 0.15)
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
    """Keywords (names weigh 3, titles 2, descriptions 1) and, when an app provides a ranker, meaning (the query's
    embedding against each tool's), fused by reciprocal rank: "rain tomorrow in Berlin" finds the weather tool."""
    query = str(arguments.get("query", ""))
    terms = set(_WORD.findall(query.lower())) - _STOPWORDS
    top_k = int(arguments.get("top_k", 5))
    tools = list(visible_tools(workspace_id=context.workspace_id, api_key=context.api_key))
    keyword = []
    for tool in tools:
        fields = ((tool.name.replace("_", " "), 3), (tool.title, 2), (tool.description, 1))
        score = sum(weight * len(terms & set(_WORD.findall(text.lower()))) for text, weight in fields)
        if score:
            keyword.append((score, tool.name))
    keyword.sort(key=lambda item: (-item[0], item[1]))
    rankings = [[name for _score, name in keyword]]
    ranker = tool_ranker()
    if ranker is not None and tools:
        try:
            similar = [(score, tool.name) for score, tool in ranker(query, tools) if score >= SIMILARITY_MIN]
        except Exception:  # the embedder is unavailable: keywords still answer
            logger.warning("find_tools: ranking by meaning failed; keywords only", exc_info=True)
            similar = []
        similar.sort(key=lambda item: (-item[0], item[1]))
        rankings.append([name for _score, name in similar])
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, name in enumerate(ranking, start=1):
            fused[name] = fused.get(name, 0.0) + 1.0 / (RRF_K + rank)
    by_name = {tool.name: tool for tool in tools}
    best = sorted(fused, key=lambda name: (-fused[name], name))[:top_k]
    matches = [{"name": name, "title": by_name[name].title, "description": by_name[name].description} for name in best]
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
