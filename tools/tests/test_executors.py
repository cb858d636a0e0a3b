"""Calling tools: arguments validated, quota taken, HTTP tools against a local (allow-listed) server, failures as
results a user can act on, and the credential never leaving in a result."""

import http.server
import json
import threading

import pytest

from accounts.models import Role
from accounts.tests.factories import workspace_with
from billing.models import Metric, Plan, Tier
from billing.quotas import QuotaExceeded, quota_usage
from tools import services
from tools.errors import ToolNotFound
from tools.executors import tool_call
from tools.models import Tool, ToolKind

pytestmark = pytest.mark.django_db


class _Api(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def _answer(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        type(self).seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        if self.path.startswith("/missing"):
            self._answer(404, {"error": "no such city"})
        else:
            self._answer(200, {"city": self.path.split("/")[2].split("?")[0], "temperature": 21})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        type(self).seen.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
        self._answer(201, {"created": True})

    def log_message(self, *args):
        pass


@pytest.fixture
def api(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{server.server_address[1]}"]
    _Api.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _http_tool(name: str, url: str, **fields) -> Tool:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    return services.tool_save(
        tool=Tool(
            name=name,
            kind=ToolKind.HTTP,
            description=name,
            input_schema=schema,
            http_url_template=url,
            security_level=1,
            **fields,
        )
    )


def test_an_http_tool_calls_the_service_and_returns_its_json(api):
    workspace, _members = workspace_with(Role.OWNER)
    _http_tool("weather", f"{api}/weather/{{city}}", http_credentials="Bearer sk-upstream-secret")

    result = tool_call(workspace_id=workspace.pk, name="weather", arguments={"city": "São Paulo", "units": "metric"})

    assert not result.is_error
    assert result.structured == {"city": "S%C3%A3o%20Paulo", "temperature": 21}
    assert _Api.seen[0]["path"] == "/weather/S%C3%A3o%20Paulo?units=metric"
    assert _Api.seen[0]["authorization"] == "Bearer sk-upstream-secret"
    assert "sk-upstream-secret" not in result.text


def test_a_post_tool_sends_the_arguments_as_json(api):
    workspace, _members = workspace_with(Role.OWNER)
    _http_tool("create_city", f"{api}/cities", http_method="POST")
    result = tool_call(workspace_id=workspace.pk, name="create_city", arguments={"city": "Oslo"})
    assert result.structured == {"created": True}
    assert _Api.seen[0]["body"] == {"city": "Oslo"}


def test_failures_are_results_with_a_reason(api, settings):
    workspace, _members = workspace_with(Role.OWNER)
    _http_tool("missing", f"{api}/missing/{{city}}")
    _http_tool("metadata", "http://169.254.169.254/latest/{city}")

    not_found = tool_call(workspace_id=workspace.pk, name="missing", arguments={"city": "Atlantis"})
    assert not_found.is_error
    assert not_found.text.startswith("The service answered 404:")
    refused = tool_call(workspace_id=workspace.pk, name="metadata", arguments={"city": "x"})
    assert refused.is_error
    assert "cloud metadata address" in refused.text
    bad_arguments = tool_call(workspace_id=workspace.pk, name="missing", arguments={"town": "x"})
    assert bad_arguments.is_error
    assert "Invalid arguments for missing" in bad_arguments.text


def test_each_call_takes_quota_and_an_exhausted_quota_stops_calls():
    workspace, _members = workspace_with(Role.OWNER)
    Plan.objects.filter(tier=Tier.FREE).update(api_calls_per_month=2)
    for _ in range(2):
        assert not tool_call(workspace_id=workspace.pk, name="get_usage", arguments={}).is_error
    with pytest.raises(QuotaExceeded):
        tool_call(workspace_id=workspace.pk, name="get_usage", arguments={})
    used = {quota.metric: quota.used for quota in quota_usage(workspace_id=workspace.pk)}
    assert used[Metric.API_CALLS] == 2


def test_a_tool_the_caller_cannot_see_is_not_found():
    workspace, _members = workspace_with(Role.OWNER)
    services.tool_save(
        tool=Tool(
            name="critical_op",
            kind=ToolKind.HTTP,
            description="x",
            input_schema={"type": "object"},
            http_url_template="https://example.com",
            security_level=4,
        )
    )
    with pytest.raises(ToolNotFound):
        tool_call(workspace_id=workspace.pk, name="critical_op", arguments={})
    with pytest.raises(ToolNotFound):
        tool_call(workspace_id=workspace.pk, name="no_such_tool", arguments={})
