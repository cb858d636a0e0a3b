"""Console forms for a workspace's own HTTP tools; the services decide what is allowed."""

import json

from django import forms

from accounts.models import SecurityLevel
from tools.models import Tool, ToolKind

DEFAULT_SCHEMA = '{\n  "type": "object",\n  "properties": {},\n  "additionalProperties": false\n}'


class JSONObjectField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 6, "class": "code"})

    def to_python(self, value):
        text = super().to_python(value) or "{}"
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"This is not valid JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise forms.ValidationError("Give a JSON object ({…}).")
        return parsed


class CustomToolForm(forms.Form):
    name = forms.CharField(max_length=128, help_text="How MCP clients call it: letters, digits, _ - .")
    title = forms.CharField(max_length=200, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="What it does, for the AI.")
    http_method = forms.ChoiceField(label="Method", choices=[(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")])
    http_url_template = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="https://api.example.com/items/{id}: {placeholders} come from the arguments.",
    )
    input_schema = JSONObjectField(initial=DEFAULT_SCHEMA, help_text="JSON Schema (2020-12) of the arguments.")
    http_headers = JSONObjectField(label="Headers", required=False, initial="{}")
    http_credentials = forms.CharField(
        label="Credential",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Sent as the Authorization header, e.g. “Bearer …”. Stored encrypted; never shown again.",
    )
    clear_credentials = forms.BooleanField(required=False, label="Remove the stored credential")
    security_level = forms.TypedChoiceField(choices=SecurityLevel.choices, coerce=int, initial=SecurityLevel.STANDARD)
    read_only = forms.BooleanField(required=False, help_text="It changes nothing (read-only keys may call it).")

    def __init__(self, *args, instance: Tool | None = None, **kwargs):
        self.instance = instance
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "title": instance.title,
                    "description": instance.description,
                    "http_method": instance.http_method,
                    "http_url_template": instance.http_url_template,
                    "input_schema": json.dumps(instance.input_schema, indent=2),
                    "http_headers": json.dumps(instance.http_headers or {}, indent=2),
                    "security_level": instance.security_level,
                    "read_only": instance.read_only,
                },
            )
        super().__init__(*args, **kwargs)
        if instance is None:
            del self.fields["clear_credentials"]
        elif instance.http_credentials:
            self.fields[
                "http_credentials"
            ].help_text = "A credential is stored (never shown). Type a new one to replace it; leave empty to keep it."
        else:
            del self.fields["clear_credentials"]

    def tool(self) -> Tool:
        """The new tool, or the edited one (not saved: the service validates and saves)."""
        data = self.cleaned_data
        tool = self.instance or Tool(kind=ToolKind.HTTP)
        tool.name = data["name"]
        tool.title = data["title"]
        tool.description = data["description"]
        tool.http_method = data["http_method"]
        tool.http_url_template = data["http_url_template"]
        tool.input_schema = data["input_schema"]
        tool.http_headers = data["http_headers"] or {}
        if data["http_credentials"]:
            tool.http_credentials = data["http_credentials"]
        elif data.get("clear_credentials"):
            tool.http_credentials = ""
        tool.security_level = data["security_level"]
        tool.annotations = {**(tool.annotations or {}), "readOnlyHint": data["read_only"]}
        return tool
