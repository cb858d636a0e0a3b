"""The registry: valid definitions only, visibility by plan, key scope and workspace, built-ins, prompts, audit."""

import pytest

from accounts import api_keys
from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from billing.models import BillingAccount, Plan, Tier
from monitoring.models import AuditEvent
from tools import services
from tools.builtin_tools import find_tools, get_usage, whoami
from tools.builtins import ToolContext
from tools.errors import CustomToolsNotAllowed, InvalidPromptArguments, InvalidTool
from tools.events import registry_changed_subscribe
from tools.models import Prompt, Tool, ToolKind
from tools.selectors import visible_tools

pytestmark = pytest.mark.django_db

OBJECT = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def _tool(name: str, **fields) -> Tool:
    defaults = {
        "kind": ToolKind.HTTP,
        "description": f"{name} tool",
        "input_schema": OBJECT,
        "http_url_template": "https://api.example.com/x",
        "security_level": 1,
    }
    return services.tool_save(tool=Tool(name=name, **{**defaults, **fields}))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "has space"}, "not a valid MCP tool name"),
        ({"name": "x" * 129}, "not a valid MCP tool name"),
        (
            {"input_schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}},
            "not valid JSON Schema 2020-12 at properties/a/type",
        ),
        ({"input_schema": {"type": "string"}}, "must describe an object"),
        ({"input_schema": []}, "must be a JSON object"),
        ({"output_schema": {"type": "object", "required": "q"}}, "not valid JSON Schema 2020-12"),
        ({"annotations": {"readOnlyHint": True, "makesCoffee": True}}, "Unknown annotations: makesCoffee"),
        ({"http_url_template": "ftp://example.com/"}, "needs an http:// or https:// URL"),
    ],
)
def test_invalid_tool_definitions_are_refused_with_the_reason(fields, message):
    with pytest.raises(InvalidTool, match=message):
        _tool(fields.pop("name", "valid_name"), **fields)
    assert not Tool.objects.filter(kind=ToolKind.HTTP).exists()


def test_visibility_follows_plan_level_key_scopes_and_read_only():
    workspace, (owner,) = workspace_with(Role.OWNER)
    BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.STARTER))  # level ≤ 3
    _tool("public_read", security_level=1, annotations={"readOnlyHint": True})
    _tool("standard_write", security_level=2)
    _tool("sensitive", security_level=3)
    _tool("critical", security_level=4)
    _tool("disabled", security_level=1, enabled=False)

    def names(key=None):
        return set(
            visible_tools(workspace_id=workspace.pk, api_key=key)
            .filter(kind=ToolKind.HTTP)
            .values_list("name", flat=True)
        )

    assert names() == {"public_read", "standard_write", "sensitive"}
    scoped = api_keys.api_key_authenticate(raw_key=issue_key(owner, max_security_level=2).secret)
    assert names(scoped) == {"public_read", "standard_write"}
    listed = api_keys.api_key_authenticate(raw_key=issue_key(owner, tools=["sensitive", "critical"]).secret)
    assert names(listed) == set()  # "sensitive" is level 3 but the key's default highest level is 2
    read_only = api_keys.api_key_authenticate(raw_key=issue_key(owner, read_only=True, max_security_level=4).secret)
    assert names(read_only) == {"public_read"}


def test_custom_tools_need_a_plan_that_allows_them_and_stay_in_their_workspace():
    workspace, (owner,) = workspace_with(Role.OWNER)
    other, _members = workspace_with(Role.OWNER)
    tool = Tool(
        name="crm_lookup",
        kind=ToolKind.HTTP,
        description="CRM",
        input_schema=OBJECT,
        http_url_template="https://crm.example.com/api",
    )
    with pytest.raises(CustomToolsNotAllowed, match="Free plan does not include custom tools"):
        services.custom_tool_save(actor=owner, tool=tool)

    BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.PROFESSIONAL))
    services.custom_tool_save(actor=owner, tool=tool)
    assert visible_tools(workspace_id=workspace.pk).filter(name="crm_lookup").exists()
    assert not visible_tools(workspace_id=other.pk).filter(name="crm_lookup").exists()


def test_every_change_is_audited_and_announced(django_capture_on_commit_callbacks):
    heard = []
    registry_changed_subscribe(lambda kind, workspace_id: heard.append((kind, workspace_id)))
    with django_capture_on_commit_callbacks(execute=True):
        tool = _tool("announced")
        tool.enabled = False
        services.tool_save(tool=tool)
        services.tool_delete(tool=tool)
    assert list(
        AuditEvent.objects.filter(action__startswith="tool.").values_list("action", flat=True).order_by("created_at")
    ) == ["tool.create", "tool.update", "tool.delete"]
    assert heard[-3:] == [("tools", None)] * 3


def test_http_credentials_are_encrypted_at_rest():
    from django.db import connection

    _tool("with_secret", http_credentials="Bearer sk-very-secret")
    with connection.cursor() as cursor:
        cursor.execute("SELECT http_credentials FROM tools_tool WHERE name = 'with_secret'")
        (stored,) = cursor.fetchone()
    assert "sk-very-secret" not in stored
    assert Tool.objects.get(name="with_secret").http_credentials == "Bearer sk-very-secret"


def test_builtins_are_registered_as_global_tools():
    builtins = set(Tool.objects.filter(kind=ToolKind.BUILTIN, workspace=None).values_list("name", flat=True))
    assert {"whoami", "get_usage", "find_tools"} <= builtins


def test_whoami_and_get_usage_report_the_plan_and_quotas():
    workspace, _members = workspace_with(Role.OWNER)
    context = ToolContext(workspace_id=workspace.pk)
    result = whoami(context, {})
    assert result.structured is not None
    assert result.structured["plan"] == "free"
    assert f"Workspace {workspace.name} on the Free plan." in result.text
    usage = (get_usage(context, {}).structured or {})["usage"]
    assert {quota["metric"] for quota in usage} == {"api_calls", "ai_operations", "storage_bytes"}


def test_find_tools_ranks_visible_tools_by_what_they_do():
    workspace, _members = workspace_with(Role.OWNER)
    _tool("weather_forecast", description="Forecast the weather for a city")
    _tool("send_invoice", description="Send an invoice to a customer")
    _tool("secret_weather", description="weather", security_level=4)  # not visible on Free
    result = find_tools(ToolContext(workspace_id=workspace.pk), {"query": "weather in Paris", "top_k": 3})
    assert [match["name"] for match in (result.structured or {})["tools"]] == ["weather_forecast"]
    nothing = find_tools(ToolContext(workspace_id=workspace.pk), {"query": "zzzz"})
    assert nothing.text == "No tool matches that description."


def test_prompts_substitute_declared_arguments_as_plain_text_only():
    prompt = Prompt.objects.create(
        name="summarise",
        arguments=[{"name": "topic", "required": True}, {"name": "tone"}],
        messages=[{"role": "user", "text": "Summarise {topic} in a {tone} tone. {__class__} {topic.__dict__}"}],
    )
    [message] = services.prompt_render(prompt=prompt, arguments={"topic": "{tone} {__import__}", "tone": "calm"})
    assert message["text"] == "Summarise {tone} {__import__} in a calm tone. {__class__} {topic.__dict__}"
    with pytest.raises(InvalidPromptArguments, match="Missing required arguments: topic"):
        services.prompt_render(prompt=prompt, arguments={})
    with pytest.raises(InvalidPromptArguments, match="Unknown arguments: extra"):
        services.prompt_render(prompt=prompt, arguments={"topic": "x", "extra": "y"})


def test_the_admin_never_shows_credentials_and_explains_invalid_schemas(admin_client):
    tool = _tool("admin_tool", http_credentials="Bearer sk-admin-secret")
    page = admin_client.get(f"/admin/tools/tool/{tool.pk}/change/").content.decode()
    assert "sk-admin-secret" not in page
    assert 'name="http_credentials"' not in page  # only a write-only "set a new one" field, rendered empty
    assert 'type="password" name="new_http_credentials"' in page
    response = admin_client.post(
        "/admin/tools/tool/add/",
        {
            "name": "broken",
            "kind": "http",
            "description": "x",
            "input_schema": '{"type": "string"}',
            "annotations": "{}",
            "http_headers": "{}",
            "security_level": 1,
            "timeout_seconds": 30,
            "ai_operation_cost": 0,
            "http_method": "GET",
        },
    )
    assert response.status_code == 200
    assert "must describe an object" in response.content.decode()
    assert not Tool.objects.filter(name="broken").exists()
