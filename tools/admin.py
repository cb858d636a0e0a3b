from django import forms
from django.contrib import admin
from unfold.admin import ModelAdmin

from tools import services
from tools.errors import InvalidTool
from tools.models import Prompt, Tool, UpstreamServer


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


@admin.register(Tool)
class ToolAdmin(ModelAdmin):
    form = ToolAdminForm
    list_display = ("name", "kind", "security_level", "enabled", "workspace", "upstream")
    list_filter = ("kind", "security_level", "enabled")
    search_fields = ("name", "title", "description")

    def save_model(self, request, obj, form, change):
        services.tool_save(tool=obj, actor=request.user, request=request)

    def delete_model(self, request, obj):
        services.tool_delete(tool=obj, actor=request.user, request=request)


@admin.register(Prompt)
class PromptAdmin(ModelAdmin):
    list_display = ("name", "title", "enabled", "workspace", "upstream")
    search_fields = ("name", "title", "description")


@admin.register(UpstreamServer)
class UpstreamServerAdmin(ModelAdmin):
    list_display = ("name", "url", "transport", "enabled", "last_sync_at", "consecutive_failures", "circuit_opened_at")
    exclude = ("credentials",)  # a secret: set through the service, never shown back
    readonly_fields = ("last_sync_at", "last_error", "consecutive_failures", "circuit_opened_at")
