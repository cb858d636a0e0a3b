"""The tools REST API: list what a caller may use, and call a tool (the same path as the console's "try it")."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.permissions import IsSignedInOrKey, is_key
from tools.executors import tool_call
from tools.models import Tool
from tools.selectors import visible_tools


class ToolSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tool
        fields = (
            "name",
            "title",
            "description",
            "input_schema",
            "output_schema",
            "annotations",
            "kind",
            "security_level",
        )


class ToolCallSerializer(serializers.Serializer):
    arguments = serializers.DictField(default=dict)


class ToolResultSerializer(serializers.Serializer):
    text = serializers.CharField()
    structured = serializers.DictField(allow_null=True)
    is_error = serializers.BooleanField()


class _ToolsView(APIView):
    """With an API key: its workspace and scopes. Signed in: the workspace in the URL, through the membership."""

    permission_classes = [IsSignedInOrKey]

    def caller(self, request: Request, workspace_id: str):
        if is_key(request):
            workspace = account_selectors.workspace_get_for_key(
                workspace_id=workspace_id, key_workspace_id=request.auth.workspace_id
            )
            return workspace.pk, request.auth
        return account_selectors.membership_get(user=request.user, workspace_id=workspace_id).workspace_id, None


class ToolListView(_ToolsView):
    @extend_schema(summary="The tools this caller may use", responses=ToolSerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace, key = self.caller(request, workspace_id)
        return Response(ToolSerializer(visible_tools(workspace_id=workspace, api_key=key), many=True).data)


class ToolCallView(_ToolsView):
    @extend_schema(
        summary="Call a tool; a failure of the tool itself is a result with is_error",
        request=ToolCallSerializer,
        responses=ToolResultSerializer,
    )
    def post(self, request: Request, workspace_id: str, name: str) -> Response:
        workspace, key = self.caller(request, workspace_id)
        serializer = ToolCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = tool_call(
            workspace_id=workspace, name=name, arguments=serializer.validated_data["arguments"], api_key=key
        )
        return Response({"text": result.text, "structured": result.structured, "is_error": result.is_error})
