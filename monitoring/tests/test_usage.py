"""The usage ledger: every tool call becomes an event (fast path, protocol core, REST), written in batches, never
lost when the server is stopped normally; rollups right across hour and day boundaries and for late events;
percentiles from the histograms; retention."""

import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, issue_key
from billing.models import Tier
from monitoring.calls import CallStatus, ToolCall, Transport
from monitoring.models import LATENCY_BOUNDS_MS, UsageDirtyHour, UsageEvent, UsageRollup
from monitoring.usage import (
    percentile,
    usage_events_flush,
    usage_events_prune,
    usage_events_write,
    usage_rollup_all,
)
from tests.integration.conftest import asgi_server_start
from tests.mcp.conftest import META, http_client, tenant_make
from tools.errors import ToolNotFound
from tools.executors import tool_call

pytestmark = pytest.mark.django_db(transaction=True)


def _at(moment: str | datetime) -> float:
    """Seconds since the epoch of a datetime, or of an ISO time without zone read as UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    return moment.timestamp()


def call_at(workspace_id, at: str | datetime, *, tool="echo", status=CallStatus.OK, latency=5.0, key=None) -> ToolCall:
    """A tool call as the observers report it, at a chosen time."""
    return ToolCall(
        workspace_id=workspace_id,
        tool=tool,
        status=status,
        latency_ms=latency,
        transport=Transport.STREAMABLE_HTTP,
        api_key_id=key,
        at=_at(at),
    )


def _rows(workspace_id, granularity: str, stamp: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(bucket, tool or key) → (calls, failed), over the rows' statuses."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for row in UsageRollup.objects.filter(workspace_id=workspace_id, granularity=granularity):
        key = (format(row.bucket, stamp), row.tool or str(row.api_key_id))
        calls, failed = totals.get(key, (0, 0))
        totals[key] = (calls + row.calls, failed + row.failed)
    return totals


def _hourly(workspace_id) -> dict[tuple[str, str], tuple[int, int]]:
    return _rows(workspace_id, "hour", "%Y-%m-%d %H")


def _daily(workspace_id) -> dict[tuple[str, str], tuple[int, int]]:
    return _rows(workspace_id, "day", "%Y-%m-%d")


def test_rest_calls_become_events_with_their_status():
    tenant = tenant_make(Tier.FREE)
    workspace = uuid.UUID(tenant.workspace_id)
    usage_events_flush()  # nothing of earlier tests
    assert tool_call(workspace_id=workspace, name="echo", arguments={"text": "hi"}, transport=Transport.REST)
    bad = tool_call(workspace_id=workspace, name="echo", arguments={"wrong": 1}, transport=Transport.REST)
    assert bad.is_error
    with pytest.raises(ToolNotFound):
        tool_call(workspace_id=workspace, name="no_such_tool", arguments={}, transport=Transport.REST)
    tool_call(workspace_id=workspace, name="echo", arguments={"text": "quiet"})  # no transport: not observed
    assert UsageEvent.objects.filter(workspace_id=workspace).count() == 0  # buffered, not written yet
    assert usage_events_flush() == 3
    events = list(UsageEvent.objects.filter(workspace_id=workspace).order_by("id"))
    assert [(event.tool, event.status, event.transport) for event in events] == [
        ("echo", "ok", "rest"),
        ("echo", "tool_error", "rest"),
        ("no_such_tool", "denied", "rest"),
    ]
    assert all(event.latency_ms > 0 for event in events)
    assert UsageDirtyHour.objects.filter(workspace_id=workspace).exists()


def test_rollups_keep_hours_and_days_apart_and_take_late_events():
    member = MembershipFactory.create(role=Role.OWNER)
    workspace = member.workspace_id
    key = issue_key(member).key.pk
    usage_events_write(
        [
            call_at(workspace, "2026-03-01T10:59:59.900", key=key),
            call_at(workspace, "2026-03-01T11:00:00.000", key=key),
            call_at(workspace, "2026-03-01T11:30:00", status=CallStatus.TOOL_ERROR),
            call_at(workspace, "2026-03-01T23:59:59.999", tool="search_knowledge", key=key),
            call_at(workspace, "2026-03-02T00:00:00", tool="search_knowledge"),
        ]
    )
    assert usage_rollup_all() == 4  # four (workspace, hour) pairs were dirty
    assert _hourly(workspace) == {
        ("2026-03-01 10", "echo"): (1, 0),
        ("2026-03-01 11", "echo"): (2, 1),
        ("2026-03-01 23", "search_knowledge"): (1, 0),
        ("2026-03-02 00", "search_knowledge"): (1, 0),
    }
    assert _daily(workspace) == {
        ("2026-03-01", "echo"): (3, 1),
        ("2026-03-01", "search_knowledge"): (1, 0),
        ("2026-03-02", "search_knowledge"): (1, 0),
    }
    assert _rows(workspace, "key_day", "%Y-%m-%d") == {
        ("2026-03-01", str(key)): (3, 0),
        ("2026-03-01", "None"): (1, 1),  # signed in, without a key
        ("2026-03-02", "None"): (1, 0),
    }
    statuses = UsageRollup.objects.filter(workspace_id=workspace, granularity="day", tool="echo")
    assert sorted(statuses.values_list("status", "calls")) == [("ok", 2), ("tool_error", 1)]
    assert usage_rollup_all() == 0  # nothing dirty any more

    # A late event for an hour already rolled up (a process that flushed late): its hour and day are recomputed.
    usage_events_write([call_at(workspace, "2026-03-01T10:15:00", key=key)])
    assert usage_rollup_all() == 1
    assert _hourly(workspace)[("2026-03-01 10", "echo")] == (2, 0)
    assert _daily(workspace)[("2026-03-01", "echo")] == (4, 1)
    assert _rows(workspace, "key_day", "%Y-%m-%d")[("2026-03-01", str(key))] == (4, 0)
    other = MembershipFactory.create().workspace_id
    assert not UsageRollup.objects.filter(workspace_id=other).exists()


def test_latency_histograms_give_percentiles():
    workspace = MembershipFactory.create().workspace_id
    latencies = [3.0] * 90 + [150.0] * 9 + [4_000.0]
    usage_events_write([call_at(workspace, "2026-03-01T12:00:00", latency=latency) for latency in latencies])
    usage_rollup_all()
    row = UsageRollup.objects.get(workspace_id=workspace, granularity="hour")
    assert sum(row.latency_histogram) == 100
    assert len(row.latency_histogram) == len(LATENCY_BOUNDS_MS) + 1
    p50, p95 = percentile(row.latency_histogram, 0.5), percentile(row.latency_histogram, 0.95)
    assert p50 is not None
    assert 2 <= p50 <= 5  # 3 ms, within its bucket [2, 5)
    assert p95 is not None
    assert 100 <= p95 <= 200  # 150 ms, within [100, 200)
    assert percentile([0] * 16, 0.5) is None
    assert row.latency_ms_sum == pytest.approx(sum(latencies))


def test_old_raw_events_are_pruned_and_their_rollups_kept(settings):
    settings.USAGE_EVENT_RETENTION_DAYS = 30
    workspace = MembershipFactory.create().workspace_id
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    usage_events_write(
        [
            call_at(workspace, old.replace(tzinfo=None).isoformat()),
            call_at(workspace, recent.replace(tzinfo=None).isoformat()),
        ]
    )
    usage_rollup_all()
    assert usage_events_prune(now=now) == 1
    assert UsageEvent.objects.filter(workspace_id=workspace).count() == 1
    assert UsageRollup.objects.filter(workspace_id=workspace, granularity="day").count() == 2  # still both days


def test_a_deleted_workspace_takes_its_usage_with_it():
    member = MembershipFactory.create()
    usage_events_write([call_at(member.workspace_id, "2026-03-01T12:00:00")])
    usage_rollup_all()
    member.workspace.delete()
    assert not UsageEvent.objects.filter(workspace_id=member.workspace_id).exists()
    assert not UsageRollup.objects.filter(workspace_id=member.workspace_id).exists()


def _fast_call(base: str, key: str, request_id: int) -> int:
    """A stateless 2026-07-28 tools/call, as the MCP fast path serves it."""
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": f"call {request_id}"}, "_meta": META},
    }
    response = httpx.post(
        f"{base}/mcp",
        content=json.dumps(message),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Mcp-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": "echo",
        },
        timeout=10,
    )
    return response.status_code


@pytest.mark.slow
@pytest.mark.parametrize("asgi_server", ["uvicorn", "daphne"])
def test_no_event_is_lost_when_the_server_is_stopped(asgi_server):
    """The server only writes at exit here (its flush interval is an hour): SIGTERM must leave every call in the
    ledger, from the fast path and from the SDK's session path."""
    tenant = tenant_make(Tier.ENTERPRISE)
    server = asgi_server_start(asgi_server, USAGE_EVENTS_FLUSH_SECONDS="3600", USAGE_EVENTS_BATCH="100000")
    try:
        assert [_fast_call(server.base, tenant.key, number) for number in range(1, 26)] == [200] * 25

        async def session() -> None:
            transport = streamable_http_client(server.url, http_client=http_client(tenant.key))
            async with Client(transport, mode="legacy", cache=None) as client:
                for number in range(5):
                    await client.call_tool("echo", {"text": f"session {number}"})
                with contextlib.suppress(MCPError):  # -32602, recorded as denied
                    await client.call_tool("no_such_tool", {})

        anyio.run(session)
        time.sleep(0.5)
        assert UsageEvent.objects.filter(workspace_id=tenant.workspace_id).count() == 0  # still buffered
    finally:
        server.stop()
    events = UsageEvent.objects.filter(workspace_id=tenant.workspace_id)
    assert events.filter(status="ok").count() == 30
    assert events.filter(status="denied", tool="no_such_tool").count() == 1
    assert set(events.values_list("transport", flat=True)) == {"streamable-http"}
