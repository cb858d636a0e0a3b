import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin
from unfold.decorators import action

from accounts.models import Workspace
from core.errors import ToolportError
from tools import services
from tools.errors import InvalidTool
from tools.models import Prompt, Tool, UpstreamResource, UpstreamServer
from tools.upstream import upstream_import


class SecretField(forms.CharField):
    """A write-only secret: never rendered back; empty keeps the stored value."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
        super().__init__(**kwargs)


class ToolAdminForm(forms.ModelForm):
    class Meta:
        model = Tool
        # Not http_credentials: a secret is set through the service and never shown back.
        fields = (
            "workspace",
            "name",
            "title",
            "description",
            "kind",
            "security_level",
            "enabled",
            "timeout_seconds",
            "ai_operation_cost",
            "input_schema",
            "output_schema",
            "annotations",
            "builtin_name",
            "http_method",
            "http_url_template",
            "http_headers",
            "upstream",
            "upstream_tool_name",
        )

    new_http_credentials = SecretField(
        label="Set HTTP credential",
        help_text="The Authorization header value sent to the HTTP endpoint. Stored encrypted, never shown back; "
        "leave empty to keep the current one.",
    )
    clear_http_credentials = forms.BooleanField(required=False, label="Remove the stored credential")

    def clean(self):
        cleaned = super().clean() or {}
        try:
            services.tool_definition_validate(
                name=cleaned.get("name", ""),
                input_schema=cleaned.get("input_schema"),
                output_schema=cleaned.get("output_schema"),
                annotations=cleaned.get("annotations"),
            )
        except InvalidTool as error:
            field = error.details.get("field")
            self.add_error(field if isinstance(field, str) and field in self.fields else None, error.message)
        return cleaned


class ToolTestForm(forms.Form):
    workspace = forms.ModelChoiceField(
        queryset=Workspace.objects.order_by("name"),
        required=False,
        help_text="Run as this workspace (built-in tools need one). Staff tests are audited, not metered.",
    )
    # Not required: Django counts {} as empty, and {} is a fine argument object.
    arguments = forms.JSONField(
        initial=dict, required=False, help_text="A JSON object matching the tool's input schema."
    )

    def clean_arguments(self):
        value = self.cleaned_data["arguments"]
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("The arguments must be a JSON object.")
        return value


@admin.register(Tool)
class ToolAdmin(ModelAdmin):
    form = ToolAdminForm
    list_display = ("name", "kind", "security_level", "enabled", "workspace", "upstream")
    list_filter = ("kind", "security_level", "enabled", "upstream")
    search_fields = ("name", "title", "description")
    actions_detail = ["test_tool"]

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("new_http_credentials"):
            obj.http_credentials = form.cleaned_data["new_http_credentials"]
        elif form.cleaned_data.get("clear_http_credentials"):
            obj.http_credentials = ""
        services.tool_save(tool=obj, actor=request.user, request=request)

    @action(description="Test this tool", url_path="test", permissions=["change"])
    def test_tool(self, request: HttpRequest, object_id: str) -> HttpResponse:
        tool = get_object_or_404(Tool.objects.select_related("upstream", "workspace"), pk=object_id)
        form = ToolTestForm(request.POST or None, initial={"workspace": tool.workspace, "arguments": {}})
        result = None
        if request.method == "POST" and form.is_valid():
            result = services.tool_test(
                tool=tool,
                arguments=form.cleaned_data["arguments"],
                workspace=form.cleaned_data["workspace"],
                actor=request.user,
                request=request,
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tool,
            "title": f"Test {tool.name}",
            "tool": tool,
            "form": form,
            "result": result,
            "structured": json.dumps(result.structured, indent=2) if result and result.structured else "",
            "input_schema": json.dumps(tool.input_schema, indent=2),
        }
        return TemplateResponse(request, "admin/tools/tool/test.html", context)

    def delete_model(self, request, obj):
        services.tool_delete(tool=obj, actor=request.user, request=request)


@admin.register(Prompt)
class PromptAdmin(ModelAdmin):
    list_display = ("name", "title", "enabled", "workspace", "upstream")
    search_fields = ("name", "title", "description")


class UpstreamServerForm(forms.ModelForm):
    class Meta:
        model = UpstreamServer
        fields = ("name", "url", "transport", "enabled", "default_security_level")

    new_credentials = SecretField(
        label="Set credential",
        help_text="The Authorization header value Toolport sends to this server (e.g. 'Bearer …'). Stored encrypted, "
        "never shown back; leave empty to keep the current one. Clients' own credentials are never forwarded.",
    )
    clear_credentials = forms.BooleanField(required=False, label="Remove the stored credential")


class UpstreamResourceInline(admin.TabularInline):
    model = UpstreamResource
    fields = ("uri", "name", "mime_type", "description")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(UpstreamServer)
class UpstreamServerAdmin(ModelAdmin):
    form = UpstreamServerForm
    list_display = ("name", "url", "transport", "enabled", "circuit", "consecutive_failures", "last_sync_at")
    list_filter = ("enabled", "transport")
    readonly_fields = ("has_credentials", "circuit", "consecutive_failures", "last_error", "last_sync_at")
    inlines = [UpstreamResourceInline]
    actions = ["import_selected", "reset_circuit_selected"]
    actions_detail = ["import_now", "reset_circuit"]

    @admin.display(description="Circuit breaker")
    def circuit(self, obj: UpstreamServer) -> str:
        return obj.circuit_state

    @admin.display(description="Credential", boolean=True)
    def has_credentials(self, obj: UpstreamServer) -> bool:
        return bool(obj.credentials)

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("new_credentials"):
            obj.credentials = form.cleaned_data["new_credentials"]
        elif form.cleaned_data.get("clear_credentials"):
            obj.credentials = ""
        services.upstream_server_save(server=obj, actor=request.user, request=request)

    def _import(self, request: HttpRequest, server: UpstreamServer) -> None:
        try:
            report = upstream_import(server=server, actor=request.user, request=request)
        except ToolportError as error:
            self.message_user(request, f"{server.name}: {error.message}", messages.ERROR)
        else:
            self.message_user(request, f"{server.name}: {report.summary()}", messages.SUCCESS)

    @admin.action(description="Import tools, prompts and resources from the selected servers")
    def import_selected(self, request, queryset):
        for server in queryset:
            self._import(request, server)

    @admin.action(description="Reset the circuit breaker of the selected servers")
    def reset_circuit_selected(self, request, queryset):
        for server in queryset:
            services.upstream_circuit_reset(server=server, actor=request.user, request=request)
        self.message_user(request, f"Reset {queryset.count()} circuit breaker(s).", messages.SUCCESS)

    @action(description="Import from upstream", url_path="import", permissions=["change"])
    def import_now(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._import(request, get_object_or_404(UpstreamServer, pk=object_id))
        return HttpResponseRedirect(reverse("admin:tools_upstreamserver_change", args=[object_id]))

    @action(description="Reset circuit breaker", url_path="reset-circuit", permissions=["change"])
    def reset_circuit(self, request: HttpRequest, object_id: str) -> HttpResponse:
        server = get_object_or_404(UpstreamServer, pk=object_id)
        services.upstream_circuit_reset(server=server, actor=request.user, request=request)
        self.message_user(request, f"{server.name}: circuit breaker closed.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:tools_upstreamserver_change", args=[object_id]))
