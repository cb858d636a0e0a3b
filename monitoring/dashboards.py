"""What the dashboards show, always for one workspace (tenants) or summed over all (staff): calls per day by tool,
latency percentiles and error rate, top tools, keys, and the recent calls.

Charts read the hourly rollups, grouped by day in the viewer's time zone (whole-hour zones are exact; a zone with a
half-hour offset groups by the UTC hours that start in its day). Tables of calls read the raw events, newest first,
with keyset pagination over the (workspace, at, id) index.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q, QuerySet

from monitoring.models import LATENCY_BOUNDS_MS, UsageEvent
from monitoring.usage import percentile

TOP_TOOLS = 8  # tools with their own series on the stacked chart; the rest are "other"
PAGE_SIZE = 50
HISTOGRAM_SUM = ", ".join(f"sum(latency_histogram[{i}])" for i in range(1, len(LATENCY_BOUNDS_MS) + 2))


@dataclass(frozen=True)
class Window:
    """The days a chart covers, in the viewer's time zone: the last `days` days up to today."""

    days: int
    zone: ZoneInfo
    today: date

    @classmethod
    def ending_now(cls, days: int, zone: ZoneInfo, now: datetime) -> Window:
        return cls(days=days, zone=zone, today=now.astimezone(zone).date())

    @property
    def first(self) -> date:
        return self.today - timedelta(days=self.days - 1)

    @property
    def start(self) -> datetime:
        """The first day's local midnight (an aware datetime: PostgreSQL compares it in UTC)."""
        return datetime.combine(self.first, datetime.min.time(), tzinfo=self.zone)

    def labels(self) -> list[str]:
        return [(self.first + timedelta(days=offset)).isoformat() for offset in range(self.days)]


def _scope(workspace_id: UUID | None) -> tuple[str, list[Any]]:
    return ("AND workspace_id = %s", [workspace_id]) if workspace_id else ("", [])


def charts(*, workspace_id: UUID | None, window: Window) -> dict[str, Any]:
    """Both charts from one pass over the hourly rollups, grouped by local day and tool: calls per day with one series
    per top tool (the rest summed as "other"), and per day the p50/p95 latency (ms, from the histograms) and the share
    of calls that did not succeed."""
    scope, arguments = _scope(workspace_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (bucket AT TIME ZONE %s)::date, tool, sum(calls), sum(failed), "  # noqa: S608
            f"ARRAY[{HISTOGRAM_SUM}] FROM monitoring_usagerollup "
            f"WHERE granularity = 'hour' AND bucket >= %s {scope} GROUP BY 1, 2",
            [window.zone.key, window.start, *arguments],
        )
        rows = cursor.fetchall()
    labels = window.labels()
    index = {label: position for position, label in enumerate(labels)}
    totals: dict[str, int] = {}
    calls_of = [0] * len(labels)
    failed_of = [0] * len(labels)
    histograms = [[0] * (len(LATENCY_BOUNDS_MS) + 1) for _ in labels]
    for day, tool, calls, failed, histogram in rows:
        totals[tool] = totals.get(tool, 0) + int(calls)
        position = index.get(day.isoformat())
        if position is None:
            continue
        calls_of[position] += int(calls)
        failed_of[position] += int(failed or 0)
        histograms[position] = [
            total + int(count or 0) for total, count in zip(histograms[position], histogram, strict=True)
        ]
    top = sorted(totals, key=lambda tool: (-totals[tool], tool))[:TOP_TOOLS]
    series: dict[str, list[int]] = {tool: [0] * len(labels) for tool in top}
    other = [0] * len(labels)
    for day, tool, calls, _failed, _histogram in rows:
        position = index.get(day.isoformat())
        if position is not None:
            series.get(tool, other)[position] += int(calls)
    datasets = [{"label": tool, "data": series[tool]} for tool in top]
    if any(other):
        datasets.append({"label": "other", "data": other})
    return {
        "calls": {"labels": labels, "datasets": datasets, "total": sum(totals.values())},
        "latency": {
            "labels": labels,
            "p50": [percentile(histogram, 0.5) for histogram in histograms],
            "p95": [percentile(histogram, 0.95) for histogram in histograms],
            "error_rate": [
                round(100 * failed / calls, 2) if calls else None
                for calls, failed in zip(calls_of, failed_of, strict=True)
            ],
        },
    }


def utc_day_of(moment: datetime) -> datetime:
    """The start of the UTC day holding `moment`: tables over a range read whole UTC days (the daily rollups)."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def top_tools(*, workspace_id: UUID | None, since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """The most called tools since the UTC day holding `since`."""
    scope, arguments = _scope(workspace_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tool, sum(calls), sum(failed), sum(latency_ms_sum), "  # noqa: S608
            f"ARRAY[{HISTOGRAM_SUM}] FROM monitoring_usagerollup WHERE granularity = 'day' AND bucket >= %s {scope} "
            "GROUP BY tool ORDER BY 2 DESC, tool LIMIT %s",
            [utc_day_of(since), *arguments, limit],
        )
        return [
            {
                "tool": tool,
                "calls": int(calls),
                "error_rate": round(100 * int(failed or 0) / int(calls), 2) if calls else 0.0,
                "mean_ms": round(latency_sum / int(calls), 1) if calls else None,
                "p95_ms": percentile([int(count or 0) for count in histogram], 0.95),
            }
            for tool, calls, failed, latency_sum, histogram in cursor.fetchall()
        ]


def keys_breakdown(*, workspace_id: UUID, since: datetime) -> list[dict[str, Any]]:
    """Calls per API key (and those made without one: the console) since the UTC day holding `since`, with the key's
    name and state."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.api_key_id, k.name, k.prefix, k.revoked_at, sum(r.calls), sum(r.failed) "
            "FROM monitoring_usagerollup r LEFT JOIN accounts_apikey k ON k.id = r.api_key_id "
            "WHERE r.granularity = 'key_day' AND r.bucket >= %s AND r.workspace_id = %s "
            "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC",
            [utc_day_of(since), workspace_id],
        )
        return [
            {
                "key_id": key_id,
                "name": name or ("(console and REST, signed in)" if key_id is None else "(deleted key)"),
                "prefix": prefix or "",
                "revoked": revoked_at is not None,
                "calls": int(calls),
                "errors": int(failed or 0),
            }
            for key_id, name, prefix, revoked_at, calls, failed in cursor.fetchall()
        ]


# --- recent calls --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallFilters:
    api_key_id: UUID | None = None
    tool: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, events: QuerySet[UsageEvent]) -> QuerySet[UsageEvent]:
        if self.api_key_id:
            events = events.filter(api_key_id=self.api_key_id)
        if self.tool:
            events = events.filter(tool=self.tool)
        if self.status:
            events = events.filter(status=self.status)
        if self.since:
            events = events.filter(at__gte=self.since)
        if self.until:
            events = events.filter(at__lt=self.until)
        return events


def _cursor_encode(event: UsageEvent) -> str:
    return base64.urlsafe_b64encode(json.dumps([event.at.isoformat(), event.id]).encode()).decode()


def _cursor_decode(cursor: str) -> tuple[datetime, int] | None:
    try:
        at, identifier = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), int(identifier)
    except (ValueError, TypeError):
        return None


def recent_calls(
    *, workspace_id: UUID, filters: CallFilters, cursor: str = "", size: int = PAGE_SIZE
) -> tuple[list[UsageEvent], str]:
    """A page of the workspace's calls, newest first, after `cursor`; and the cursor of the next page ("" at the
    end)."""
    events = filters.apply(UsageEvent.objects.filter(workspace_id=workspace_id)).select_related("api_key")
    position = _cursor_decode(cursor) if cursor else None
    if position is not None:
        at, identifier = position
        events = events.filter(Q(at__lt=at) | Q(at=at, id__lt=identifier))
    page = list(events.order_by("-at", "-id")[: size + 1])
    following = _cursor_encode(page[size - 1]) if len(page) > size else ""
    return page[:size], following


def calls_for_export(*, workspace_id: UUID, filters: CallFilters) -> Iterator[UsageEvent]:
    """Every call the filters select, newest first, read in chunks (a CSV export streams it)."""
    events = filters.apply(UsageEvent.objects.filter(workspace_id=workspace_id)).select_related("api_key")
    return events.order_by("-at", "-id").iterator(chunk_size=2000)


def call_tools(*, workspace_id: UUID, since: datetime) -> list[str]:
    """Tool names with calls in the period (for the filter's choices)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tool FROM monitoring_usagerollup WHERE granularity = 'day' AND workspace_id = %s "
            "AND bucket >= %s ORDER BY tool",
            [workspace_id, since - timedelta(days=1)],
        )
        return [row[0] for row in cursor.fetchall()]
