"""The console's Tools page: the tools this workspace can use, their schemas, and a form to try one."""

import json

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Membership, Role
from accounts.views import SignedInRequest, workspace_page
from billing.quotas import QuotaExceeded, billing_account_get, effective_plan
from core.errors import ToolportError
from monitoring.calls import Transport
from tools import services
from tools.errors import ToolNotFound
from tools.executors import tool_call
from tools.forms import CustomToolForm
from tools.models import Tool
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
    plan = effective_plan(billing_account_get(workspace_id=membership.workspace_id), timezone.now())
    context = {
        "title": "Tools",
        "section": "tools",
        "tools": tools,
        "custom_tools_allowed": plan.custom_tools_allowed,
        "plan": plan,
        "can_manage": membership.role_rank >= Role.ADMIN.rank,
    }
    return render(request, "tools/tool_list.html", context)


def _custom_tool_form(
    request: SignedInRequest, membership: Membership, form: CustomToolForm, done: str, context: dict[str, object]
) -> HttpResponse:
    """Save a valid form through the service (which decides what the plan and role allow); errors go on the form."""
    if request.method == "POST" and form.is_valid():
        try:
            tool = services.custom_tool_save(actor=membership, tool=form.tool(), request=request)
        except ToolportError as error:
            field = error.details.get("field")
            form.add_error(field if isinstance(field, str) and field in form.fields else None, error.message)
        else:
            messages.success(request, done.format(name=tool.name))
            return redirect("console:tools", membership.workspace_id)
    return render(request, "tools/custom_tool_form.html", {"section": "tools", "form": form, **context})


@workspace_page
def custom_tool_new(request: SignedInRequest, membership: Membership) -> HttpResponse:
    form = CustomToolForm(request.POST or None)
    done = "Tool {name} added. MCP clients of this workspace can call it now."
    return _custom_tool_form(request, membership, form, done, {"title": "New HTTP tool"})


@workspace_page
def custom_tool_edit(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    tool = Tool.objects.filter(workspace_id=membership.workspace_id, name=name).first()
    if tool is None:
        raise Http404("No such custom tool in this workspace.")
    form = CustomToolForm(request.POST or None, instance=tool)
    done = "Tool {name} saved. MCP clients see the change at once."
    return _custom_tool_form(request, membership, form, done, {"title": f"Edit {name}", "editing": True})


@require_POST
@workspace_page
def custom_tool_delete(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    tool = Tool.objects.filter(workspace_id=membership.workspace_id, name=name).first()
    if tool is None:
        raise Http404("No such custom tool in this workspace.")
    try:
        services.custom_tool_delete(actor=membership, tool=tool, request=request)
    except ToolportError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Tool {name} deleted.")
    return redirect("console:tools", membership.workspace_id)


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
                context["result"] = tool_call(
                    workspace_id=membership.workspace_id, name=name, arguments=arguments, transport=Transport.CONSOLE
                )
            except (QuotaExceeded, ToolNotFound) as error:
                context["error"] = error.message
    return render(request, "tools/tool_try.html", context)
