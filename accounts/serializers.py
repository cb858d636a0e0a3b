"""Shapes of the accounts REST API: what goes out, and input validation before a service is called."""

from rest_framework import serializers

from accounts.models import ApiKey, Invitation, Membership, Role, SecurityLevel, Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role here; null when called with an API key.")

    class Meta:
        model = Workspace
        fields = ("id", "name", "is_personal", "created_at", "role")

    def get_role(self, workspace: Workspace) -> str | None:
        return self.context.get("roles", {}).get(workspace.pk)


class WorkspaceWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)


class WorkspaceDeleteSerializer(serializers.Serializer):
    confirm_name = serializers.CharField(help_text="The workspace's exact name, to confirm deletion.")


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "email", "role", "created_at")


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ("id", "email", "role", "status", "invited_by", "created_at", "expires_at")


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The token from the invitation link (the part after /invitations/).")


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)
    status = serializers.CharField(read_only=True, help_text="active, rotating, revoked or expired")

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "id",
            "name",
            "prefix",
            "status",
            "tools",
            "knowledge_bases",
            "max_security_level",
            "read_only",
            "created_by",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        )


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    tools = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, help_text="Tool names; empty or absent: all."
    )
    knowledge_bases = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, help_text="Knowledge bases; empty: all."
    )
    max_security_level = serializers.ChoiceField(choices=SecurityLevel.choices, default=SecurityLevel.STANDARD)
    read_only = serializers.BooleanField(default=False)


class ApiKeyIssuedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. It is shown this once and never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")


class ApiKeyRotateSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0, max_value=30 * 24 * 3600, default=0, help_text="How long the old key keeps working."
    )
