"""Console forms: they validate shapes; the services decide what is allowed."""

from django import forms
from django.utils import timezone

from accounts.models import Role, SecurityLevel


class WorkspaceNameForm(forms.Form):
    name = forms.CharField(max_length=80, label="Workspace name")


class WorkspaceDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the workspace name to confirm")


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What will use it, e.g. “Claude Desktop on my laptop”.")
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        help_text="Optional. Leave empty for a key that does not expire.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    tools = forms.CharField(required=False, label="Tools", help_text="Comma-separated tool names. Empty: every tool.")
    knowledge_bases = forms.CharField(
        required=False, label="Knowledge bases", help_text="Comma-separated. Empty: every knowledge base."
    )
    max_security_level = forms.TypedChoiceField(
        choices=SecurityLevel.choices, coerce=int, initial=SecurityLevel.STANDARD, label="Highest tool security level"
    )
    read_only = forms.BooleanField(required=False, label="Read-only", help_text="Only tools that change nothing.")

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Choose a moment in the future.")
        return value


class ApiKeyRotateForm(forms.Form):
    grace_minutes = forms.IntegerField(
        min_value=0, max_value=30 * 24 * 60, initial=0, label="Keep the old key working for (minutes)"
    )
