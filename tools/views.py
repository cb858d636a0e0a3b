"""The console's Tools page: the tools this workspace can use, their schemas, and a form to try one."""

import json

from django.http import Http404, HttpResponse
from django.shortcuts import render

from accounts.models import Membership
from accounts.views import SignedInRequest, workspace_page
from billing.quotas import QuotaExceeded
from tools.errors import ToolNotFound
from tools.executors import tool_call
from tools.selectors import visible_tool_get, visible_tools


def _skeleton(schema: dict) -> str:
    """A starting point for the arguments: each property's default, else an empty value of its type."""
    empty = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
    properties = schema.get("properties", {})
    skeleton = {
        name: spec["default"] if "default" in spec else empty.get(spec.get("type", "string"))
        for name, spec in properties.items()
    }
    return json.dumps(skeleton, indent=2)


@workspace_page
def tool_list(request: SignedInRequest, membership: Membership) -> HttpResponse:
    tools = visible_tools(workspace_id=membership.workspace_id)
    return render(request, "tools/tool_list.html", {"title": "Tools", "section": "tools", "tools": tools})


@workspace_page
def tool_try(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    tool = visible_tool_get(workspace_id=membership.workspace_id, name=name)
    if tool is None:
        raise Http404("No such tool in this workspace.")
    typed = request.POST.get("arguments") or _skeleton(tool.input_schema)
    context: dict[str, object] = {
        "title": tool.title or tool.name,
        "section": "tools",
        "tool": tool,
        "schema": json.dumps(tool.input_schema, indent=2),
        "arguments": typed,
    }
    if request.method == "POST":
        try:
            arguments = json.loads(typed)
            if not isinstance(arguments, dict):
                raise ValueError("the arguments must be a JSON object")
        except ValueError as error:
            context["error"] = f"The arguments are not a JSON object: {error}"
        else:
            try:
                context["result"] = tool_call(workspace_id=membership.workspace_id, name=name, arguments=arguments)
            except (QuotaExceeded, ToolNotFound) as error:
                context["error"] = error.message
    return render(request, "tools/tool_try.html", context)
