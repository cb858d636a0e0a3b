"""The tools REST API: list what a caller may use, and call a tool (the same path as the console's "try it")."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.models import Membership, SecurityLevel
from accounts.permissions import IsSignedInOrKey, is_key
from core.errors import NotAllowed, NotFound
from monitoring.calls import Transport
from tools import services
from tools.executors import tool_call
from tools.models import Prompt, Tool, ToolKind
from tools.selectors import visible_prompts, visible_tools


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
            workspace_id=workspace,
            name=name,
            arguments=serializer.validated_data["arguments"],
            api_key=key,
            transport=Transport.REST,
        )
        return Response({"text": result.text, "structured": result.structured, "is_error": result.is_error})


class CustomToolSerializer(serializers.Serializer):
    """A workspace's own HTTP tool. `http_credentials` is write-only: responses say only whether one is stored."""

    name = serializers.CharField(max_length=128)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField()
    http_method = serializers.ChoiceField(choices=["GET", "POST", "PUT", "PATCH", "DELETE"], default="GET")
    http_url_template = serializers.CharField(max_length=2000)
    input_schema = serializers.DictField(default=lambda: {"type": "object", "properties": {}})
    http_headers = serializers.DictField(child=serializers.CharField(), default=dict)
    http_credentials = serializers.CharField(write_only=True, required=False, allow_blank=True)
    security_level = serializers.ChoiceField(choices=SecurityLevel.choices, default=SecurityLevel.STANDARD)
    read_only = serializers.BooleanField(default=False)
    has_credentials = serializers.SerializerMethodField()

    def get_has_credentials(self, tool: Tool) -> bool:
        return bool(tool.http_credentials)

    def to_representation(self, tool: Tool) -> dict:
        data = super().to_representation(tool)
        data["read_only"] = tool.read_only
        return data

    def apply(self, tool: Tool) -> Tool:
        data = self.validated_data
        for field in ("name", "title", "description", "http_method", "http_url_template", "input_schema"):
            if field in data:
                setattr(tool, field, data[field])
        if "http_headers" in data:
            tool.http_headers = data["http_headers"]
        if "security_level" in data:
            tool.security_level = int(data["security_level"])
        if "http_credentials" in data:  # "" removes the stored credential
            tool.http_credentials = data["http_credentials"]
        if "read_only" in data:
            tool.annotations = {**(tool.annotations or {}), "readOnlyHint": data["read_only"]}
        return tool


class _CustomToolsView(APIView):
    """Managing custom tools is for signed-in admins and owners (an API key calls tools; it does not edit them)."""

    permission_classes = [IsSignedInOrKey]

    def member(self, request: Request, workspace_id: str) -> Membership:
        if is_key(request):
            raise NotAllowed("Custom tools are managed by a signed-in admin or owner, not with an API key.")
        return account_selectors.membership_get(user=request.user, workspace_id=workspace_id)

    def own_tool(self, membership: Membership, name: str) -> Tool:
        tool = Tool.objects.filter(workspace_id=membership.workspace_id, name=name).first()
        if tool is None:
            raise NotFound(f"This workspace has no custom tool named {name!r}.")
        return tool


class CustomToolListView(_CustomToolsView):
    @extend_schema(summary="This workspace's own HTTP tools", responses=CustomToolSerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        membership = self.member(request, workspace_id)
        tools = Tool.objects.filter(workspace_id=membership.workspace_id).order_by("name")
        return Response(CustomToolSerializer(tools, many=True).data)

    @extend_schema(summary="Add an HTTP tool (plans with custom tools)", request=CustomToolSerializer)
    def post(self, request: Request, workspace_id: str) -> Response:
        membership = self.member(request, workspace_id)
        serializer = CustomToolSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tool = services.custom_tool_save(
            actor=membership, tool=serializer.apply(Tool(kind=ToolKind.HTTP)), request=request
        )
        return Response(CustomToolSerializer(tool).data, status=201)


class CustomToolDetailView(_CustomToolsView):
    @extend_schema(summary="One custom tool", responses=CustomToolSerializer)
    def get(self, request: Request, workspace_id: str, name: str) -> Response:
        return Response(CustomToolSerializer(self.own_tool(self.member(request, workspace_id), name)).data)

    @extend_schema(summary="Change a custom tool (only the fields sent)", request=CustomToolSerializer)
    def patch(self, request: Request, workspace_id: str, name: str) -> Response:
        membership = self.member(request, workspace_id)
        tool = self.own_tool(membership, name)
        serializer = CustomToolSerializer(tool, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tool = services.custom_tool_save(actor=membership, tool=serializer.apply(tool), request=request)
        return Response(CustomToolSerializer(tool).data)

    @extend_schema(summary="Delete a custom tool", responses={204: None})
    def delete(self, request: Request, workspace_id: str, name: str) -> Response:
        membership = self.member(request, workspace_id)
        services.custom_tool_delete(actor=membership, tool=self.own_tool(membership, name), request=request)
        return Response(status=204)


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ("name", "title", "description", "arguments")


class PromptRenderSerializer(serializers.Serializer):
    arguments = serializers.DictField(child=serializers.CharField(allow_blank=True), default=dict)


class PromptListView(_ToolsView):
    @extend_schema(summary="The prompts this caller may use", responses=PromptSerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace, _key = self.caller(request, workspace_id)
        return Response(PromptSerializer(visible_prompts(workspace_id=workspace), many=True).data)


class PromptRenderView(_ToolsView):
    @extend_schema(
        summary="Render a prompt with its arguments (MCP prompts/get)",
        request=PromptRenderSerializer,
        responses=inline_serializer(
            "RenderedPrompt", {"description": serializers.CharField(), "messages": serializers.ListField()}
        ),
    )
    def post(self, request: Request, workspace_id: str, name: str) -> Response:
        workspace, _key = self.caller(request, workspace_id)
        serializer = PromptRenderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rendered = services.prompt_get(
            workspace_id=workspace, name=name, arguments=serializer.validated_data["arguments"]
        )
        return Response({"description": rendered.description, "messages": rendered.messages})
