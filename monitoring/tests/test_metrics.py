"""/metrics as Prometheus scrapes it: behind the metrics token, parsed with prometheus_client's own parser, showing
tool calls, searches, quota denials and queue lengths after real calls, and summing every process of the host."""

import time

import httpx
import pytest
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from billing.models import Plan
from billing.quotas import QuotaExceeded
from billing.tests.factories import workspace_on_plan
from rag.search import search
from tests.integration.conftest import asgi_server_start
from tests.mcp.conftest import tenant_make
from tools.errors import ToolNotFound
from tools.executors import tool_call
from tools.models import Tool, ToolKind

TOKEN = "scrape-secret-7"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parsed(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def _scrape(client) -> Samples:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return _parsed(response.content.decode())


def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_answer_only_the_token(client, token):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {token}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


@pytest.mark.django_db
def test_calls_searches_and_denials_show_in_the_exposition(client, token):
    workspace = workspace_on_plan(api_calls=1, ai_operations=None)
    own = workspace_on_plan(api_calls=None, ai_operations=None)
    Plan.objects.filter(accounts__workspace=own).update(custom_tools_allowed=True)
    Tool.objects.create(
        workspace=own,
        name="crm_lookup",
        kind=ToolKind.HTTP,
        description="A workspace's own tool",
        input_schema={"type": "object"},
        http_url_template="http://169.254.169.254/crm/{id}",  # refused by the SSRF guard: a tool error
        security_level=1,
    )
    before = _scrape(client)

    assert not tool_call(workspace_id=workspace.pk, name="echo", arguments={"text": "hi"}, transport="rest").is_error
    with pytest.raises(QuotaExceeded):  # the plan's one call is used
        tool_call(workspace_id=workspace.pk, name="echo", arguments={"text": "again"}, transport="rest")
    with pytest.raises(ToolNotFound):
        tool_call(workspace_id=workspace.pk, name="made-up-name-123", arguments={}, transport="console")
    assert tool_call(workspace_id=own.pk, name="crm_lookup", arguments={"id": "1"}, transport="rest").is_error
    assert search(workspace_id=workspace.pk, query="anything at all") == []

    after = _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("mcp_tool_calls_total", tool="echo", status="ok") == 1
    assert grew("mcp_tool_calls_total", tool="echo", status="quota") == 1
    # Neither an unknown name nor a workspace's own tool becomes a label of its own.
    assert grew("mcp_tool_calls_total", tool="custom", status="denied") == 1
    assert grew("mcp_tool_calls_total", tool="custom", status="tool_error") == 1
    assert not any(dict(labels).get("tool") in ("made-up-name-123", "crm_lookup") for _name, labels in after)
    assert grew("mcp_tool_call_duration_seconds_count", transport="rest") == 3
    assert grew("mcp_tool_call_duration_seconds_count", transport="console") == 1
    assert grew("quota_denials_total", metric="api_calls") == 1
    assert grew("rag_search_duration_seconds_count") == 1
    assert _value(after, "celery_broker_up") == 1
    assert ("celery_queue_length", frozenset({("queue", "celery")})) in after
    assert any(name == "django_http_requests_total_by_method_total" for name, _labels in after)  # django-prometheus


@pytest.mark.django_db
def test_readiness_is_recorded_for_alerts(client, token):
    assert client.get("/readyz").status_code == 200
    samples = _scrape(client)
    for check in ("database", "pgvector", "cache", "broker", "storage"):
        assert _value(samples, "readiness_check_up", check=check) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_are_summed_and_sessions_counted_while_open(client, token):
    """The ASGI server in its own process serves REST and MCP calls; this process makes one more call; one scrape
    of the server counts all of them, and the server's open WebSocket session while it is open, and not once the
    server is killed while holding one."""
    tenant = tenant_make()
    cache.clear()
    server = asgi_server_start(METRICS_TOKEN=TOKEN)
    try:
        scrape = f"{server.base}/metrics"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        before = _parsed(httpx.get(scrape, headers=auth).text)
        for text in ("one", "two"):
            answer = httpx.post(
                f"{server.base}/api/v1/workspaces/{tenant.workspace_id}/tools/echo/call/",
                json={"arguments": {"text": text}},
                headers={"Authorization": f"Bearer {tenant.key}"},
            )
            assert answer.status_code == 200, answer.text
        here = tool_call(workspace_id=tenant.workspace_id, name="echo", arguments={"text": "here"}, transport="rest")
        assert not here.is_error
        ws_url = f"ws://127.0.0.1:{server.port}/mcp/ws"
        with connect(
            ws_url, subprotocols=[Subprotocol("mcp")], additional_headers={"Authorization": f"Bearer {tenant.key}"}
        ):
            during = _parsed(httpx.get(scrape, headers=auth).text)
        time.sleep(0.5)  # the server notices the close
        after = _parsed(httpx.get(scrape, headers=auth).text)
        in_process = _scrape(client)  # this process reads the same files
        with connect(
            ws_url, subprotocols=[Subprotocol("mcp")], additional_headers={"Authorization": f"Bearer {tenant.key}"}
        ):
            server.process.kill()  # no clean-up of its own: the next scrape drops the dead process's live gauge
            server.process.wait(timeout=10)
            killed = _scrape(client)
    finally:
        if server.process.poll() is None:
            server.stop()

    calls = ("mcp_tool_calls_total", {"tool": "echo", "status": "ok"})
    assert _value(during, calls[0], **calls[1]) - _value(before, calls[0], **calls[1]) == 3
    assert _value(in_process, calls[0], **calls[1]) == _value(during, calls[0], **calls[1])
    assert _value(during, "mcp_active_sessions", transport="websocket") == 1
    assert _value(after, "mcp_active_sessions", transport="websocket") == 0
    assert _value(killed, "mcp_active_sessions", transport="websocket") == 0
    assert _value(killed, calls[0], **calls[1]) == _value(during, calls[0], **calls[1])  # its counters stay
    server_requests = _value(during, "django_http_requests_total_by_method_total", method="POST")
    assert server_requests - _value(before, "django_http_requests_total_by_method_total", method="POST") >= 2
