"""The tenant dashboard's data: days in the viewer's time zone, percentiles and error rates, top tools and keys, recent
calls with filters and pages, the CSV export, and never another workspace's numbers."""

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, issue_key
from monitoring import dashboards
from monitoring.calls import CallStatus
from monitoring.dashboards import CallFilters, Window
from monitoring.tests.test_usage import call_at
from monitoring.usage import usage_events_write, usage_rollup_all

pytestmark = pytest.mark.django_db(transaction=True)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _calls(*, workspace_id, window: Window) -> dict:
    return dashboards.charts(workspace_id=workspace_id, window=window)["calls"]


def test_days_follow_the_viewers_time_zone():
    workspace = MembershipFactory.create().workspace_id
    usage_events_write(
        [
            call_at(workspace, _utc("2026-03-01T03:30:00")),  # New York: Feb 28, 22:30; Tokyo: Mar 1, 12:30
            call_at(workspace, _utc("2026-03-01T16:00:00")),  # New York: Mar 1, 11:00; Tokyo: Mar 2, 01:00
        ]
    )
    usage_rollup_all()
    now = _utc("2026-03-02T18:00:00")
    new_york = _calls(workspace_id=workspace, window=Window.ending_now(3, ZoneInfo("America/New_York"), now))
    assert new_york["labels"] == ["2026-02-28", "2026-03-01", "2026-03-02"]
    assert new_york["datasets"] == [{"label": "echo", "data": [1, 1, 0]}]
    tokyo = _calls(workspace_id=workspace, window=Window.ending_now(3, ZoneInfo("Asia/Tokyo"), now))
    assert tokyo["labels"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert tokyo["datasets"] == [{"label": "echo", "data": [1, 1, 0]}]
    utc = _calls(workspace_id=workspace, window=Window.ending_now(3, ZoneInfo("UTC"), now))
    assert utc["datasets"] == [{"label": "echo", "data": [0, 2, 0]}]


def test_latency_errors_top_tools_and_keys():
    member = MembershipFactory.create(role=Role.OWNER)
    workspace = member.workspace_id
    key = issue_key(member).key
    day = _utc("2026-03-01T12:00:00")
    calls = [call_at(workspace, day, latency=4.0, key=key.pk) for _ in range(18)]
    calls += [call_at(workspace, day, latency=300.0, status=CallStatus.TOOL_ERROR, key=key.pk) for _ in range(2)]
    calls += [call_at(workspace, day, tool="search_knowledge", latency=40.0) for _ in range(5)]
    usage_events_write(calls)
    usage_rollup_all()
    window = Window.ending_now(1, ZoneInfo("UTC"), day)
    latency = dashboards.charts(workspace_id=workspace, window=window)["latency"]
    assert latency["error_rate"] == [8.0]  # 2 of 25
    assert 2 <= latency["p50"][0] <= 5
    assert 200 <= latency["p95"][0] <= 500
    top = dashboards.top_tools(workspace_id=workspace, since=window.start)
    assert [(row["tool"], row["calls"], row["error_rate"]) for row in top] == [
        ("echo", 20, 10.0),
        ("search_knowledge", 5, 0.0),
    ]
    keys = dashboards.keys_breakdown(workspace_id=workspace, since=window.start)
    assert [(row["name"], row["calls"], row["errors"]) for row in keys] == [
        (key.name, 20, 2),
        ("(console and REST, signed in)", 5, 0),
    ]


def test_recent_calls_filter_and_page_newest_first():
    workspace = MembershipFactory.create().workspace_id
    start = _utc("2026-03-01T00:00:00")
    usage_events_write(
        [call_at(workspace, start + timedelta(seconds=n), tool="echo" if n % 2 else "find_tools") for n in range(120)]
    )
    seen, cursor = [], ""
    while True:
        page, cursor = dashboards.recent_calls(workspace_id=workspace, filters=CallFilters(), cursor=cursor)
        seen.extend(page)
        if not cursor:
            break
    assert len(seen) == 120
    assert [event.at for event in seen] == sorted((event.at for event in seen), reverse=True)
    echo, _ = dashboards.recent_calls(workspace_id=workspace, filters=CallFilters(tool="echo"), size=100)
    assert len(echo) == 60
    window, _ = dashboards.recent_calls(
        workspace_id=workspace,
        filters=CallFilters(since=start + timedelta(seconds=10), until=start + timedelta(seconds=20)),
    )
    assert len(window) == 10


def test_the_console_endpoints_show_only_this_workspaces_numbers(client):
    member = MembershipFactory.create(role=Role.OWNER)
    other = MembershipFactory.create(role=Role.OWNER)
    now = datetime.now(UTC)
    usage_events_write(
        [call_at(member.workspace_id, now - timedelta(minutes=n), tool="echo") for n in range(3)]
        + [call_at(other.workspace_id, now - timedelta(minutes=n), tool="secret_tool") for n in range(7)]
    )
    client.force_login(member.user)
    client.cookies["tz"] = "Europe/Paris"
    base = f"/console/w/{member.workspace_id}/usage"
    charts = client.get(f"{base}/charts/?days=7").json()
    assert charts["zone"] == "Europe/Paris"
    assert charts["calls"]["total"] == 3
    assert charts["calls"]["labels"][-1] == now.astimezone(ZoneInfo("Europe/Paris")).date().isoformat()
    assert [dataset["label"] for dataset in charts["calls"]["datasets"]] == ["echo"]
    summary = client.get(f"{base}/summary/?days=7").content.decode()
    assert "echo" in summary
    assert "secret_tool" not in summary
    calls = client.get(f"{base}/calls/").content.decode()
    assert calls.count("<code>echo</code>") == 3
    assert "secret_tool" not in calls
    exported = b"".join(client.get(f"{base}/calls.csv?tool=echo").streaming_content).decode()
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0][:3] == ["time", "tool", "status"]
    assert len(rows) == 4
    assert rows[1][0].endswith(("+01:00", "+02:00"))  # Paris time
    quotas = client.get(f"{base}/quotas/").content.decode()
    assert 'id="quota-api_calls"' in quotas
    home = client.get(reverse("console:dashboard", args=[member.workspace_id])).content.decode()
    assert "chart-calls" in home
    assert "No calls yet" not in home
    # Another workspace's id: not a member, nothing.
    for path in ("charts/", "summary/", "calls/", "calls.csv", "quotas/"):
        assert client.get(f"/console/w/{other.workspace_id}/usage/{path}").status_code == 404


def test_a_new_workspace_is_told_how_to_make_its_firstcall_at(client):
    member = MembershipFactory.create(role=Role.OWNER)
    client.force_login(member.user)
    home = client.get(reverse("console:dashboard", args=[member.workspace_id])).content.decode()
    assert "No calls yet" in home
    assert "Connect an MCP client" in home
    assert "mcpServers" in home  # a copy-ready configuration
