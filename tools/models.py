"""The registry: tools (builtin, HTTP, upstream MCP), prompts, and the upstream MCP servers tools come from.

A row with no workspace is global (managed by staff); a row with a workspace is that workspace's own custom tool.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import SecurityLevel
from core.crypto import EncryptedTextField
from core.models import TimeStampedModel

# MCP tool and prompt names: 1-128 characters of letters, digits, underscore, hyphen and dot.
MCP_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"


class ToolKind(models.TextChoices):
    BUILTIN = "builtin", "Built-in"
    HTTP = "http", "HTTP endpoint"
    UPSTREAM = "upstream", "Upstream MCP server"


class UpstreamTransport(models.TextChoices):
    STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
    SSE = "sse", "HTTP+SSE (legacy)"


class UpstreamServer(TimeStampedModel):
    """A remote MCP server whose tools and prompts are imported as `<name>__<tool>`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=40, unique=True, help_text="Prefix of its tools' names: <name>__<tool>.")
    url = models.URLField(max_length=2000)
    transport = models.CharField(
        max_length=20, choices=UpstreamTransport.choices, default=UpstreamTransport.STREAMABLE_HTTP
    )
    # The server's own credential (an Authorization header value); never a client's, never shown back.
    credentials = EncryptedTextField(blank=True)
    enabled = models.BooleanField(default=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    default_security_level = models.PositiveSmallIntegerField(
        choices=SecurityLevel.choices,
        default=SecurityLevel.STANDARD,
        help_text="The level newly imported tools get; staff can change each tool afterwards.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def circuit_state(self) -> str:
        """closed (calls go through), open (calls refused at once) or half-open (the next call is a trial)."""
        if self.circuit_opened_at is None:
            return "closed"
        reset = timedelta(seconds=settings.UPSTREAM_CIRCUIT_RESET_SECONDS)
        return "open" if timezone.now() < self.circuit_opened_at + reset else "half-open"


class UpstreamResource(TimeStampedModel):
    """A resource an upstream server lists; read through that server, shown to clients under its own URI."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    upstream = models.ForeignKey(UpstreamServer, on_delete=models.CASCADE, related_name="resources")
    uri = models.CharField(max_length=2000)
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    mime_type = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("upstream__name", "uri")
        constraints = [models.UniqueConstraint(fields=["upstream", "uri"], name="upstream_resource_uri_unique")]

    def __str__(self) -> str:
        return self.uri


class Tool(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "accounts.Workspace",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="custom_tools",
        help_text="Empty: a global tool. Set: that workspace's own custom tool.",
    )
    name = models.CharField(max_length=128)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField()
    input_schema = models.JSONField(default=dict, help_text="JSON Schema (2020-12) of the arguments; type object.")
    output_schema = models.JSONField(null=True, blank=True)
    annotations = models.JSONField(default=dict, blank=True, help_text="readOnlyHint, destructiveHint, …")
    kind = models.CharField(max_length=16, choices=ToolKind.choices)
    security_level = models.PositiveSmallIntegerField(choices=SecurityLevel.choices, default=SecurityLevel.STANDARD)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.PositiveSmallIntegerField(default=30)
    ai_operation_cost = models.PositiveIntegerField(default=0, help_text="AI operations one call consumes.")

    builtin_name = models.CharField(max_length=128, blank=True)
    http_method = models.CharField(max_length=8, blank=True, default="GET")
    http_url_template = models.CharField(max_length=2000, blank=True)
    http_headers = models.JSONField(default=dict, blank=True)
    http_credentials = EncryptedTextField(blank=True)
    upstream = models.ForeignKey(UpstreamServer, null=True, blank=True, on_delete=models.CASCADE, related_name="tools")
    upstream_tool_name = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(workspace__isnull=True), name="tool_global_name_unique"
            ),
            models.UniqueConstraint(fields=["workspace", "name"], name="tool_workspace_name_unique"),
            models.CheckConstraint(
                condition=models.Q(security_level__gte=1, security_level__lte=4), name="tool_security_level_1_to_4"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.get("readOnlyHint"))


class Prompt(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "accounts.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="custom_prompts"
    )
    name = models.CharField(max_length=128)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    arguments = models.JSONField(default=list, blank=True, help_text='[{"name", "description", "required"}]')
    messages = models.JSONField(default=list, help_text='[{"role": "user"|"assistant", "text": "… {argument} …"}]')
    enabled = models.BooleanField(default=True)
    upstream = models.ForeignKey(
        UpstreamServer, null=True, blank=True, on_delete=models.CASCADE, related_name="prompts"
    )
    upstream_prompt_name = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(workspace__isnull=True), name="prompt_global_name_unique"
            ),
            models.UniqueConstraint(fields=["workspace", "name"], name="prompt_workspace_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name
