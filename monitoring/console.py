"""The tenant dashboard (the console's home and its Usage page): quota bars that refresh themselves, calls per day by
tool, latency and error rate, top tools, keys, and the recent calls with filters, pages and a CSV export.

Every endpoint here is reached through the signed-in user's membership (`workspace_page`) and reads only that
workspace's rows. Times are shown in the viewer's time zone (core.timezones).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts import selectors
from accounts.models import Membership
from accounts.views import SignedInRequest, workspace_page
from billing.quotas import quota_usage
from core.timezones import zone_of
from monitoring import dashboards
from monitoring.calls import CallStatus
from monitoring.dashboards import CallFilters, Window
from monitoring.models import UsageEvent
from monitoring.usage import usage_rollup_all
from tools.mcp_server.clients import key_page_panel

RANGES = (7, 30, 90)
EXPORT_MAX_ROWS = 1_000_000


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        return 30
    return days if days in RANGES else 30


def _filters(request: HttpRequest, membership: Membership) -> tuple[CallFilters, dict[str, str]]:
    """The recent-calls filters from the query string (invalid values are ignored), and their values for the form."""
    raw = {name: request.GET.get(name, "").strip() for name in ("key", "tool", "status", "since", "until")}
    key_id = None
    if raw["key"]:
        try:
            key_id = UUID(raw["key"])
        except ValueError:
            raw["key"] = ""
    zone = zone_of(request)

    def moment(text: str) -> datetime | None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)

    filters = CallFilters(
        api_key_id=key_id,
        tool=raw["tool"][:128],
        status=raw["status"] if raw["status"] in CallStatus.ALL else "",
        since=moment(raw["since"]) if raw["since"] else None,
        until=moment(raw["until"]) if raw["until"] else None,
    )
    return filters, raw


def usage_panel(request: HttpRequest, membership: Membership) -> str:
    """The dashboard's usage panel (registered with the console's dashboard)."""
    workspace_id = membership.workspace_id
    has_calls = UsageEvent.objects.filter(workspace_id=workspace_id).exists()
    keys = list(selectors.api_key_list(workspace=membership.workspace))
    context = {
        "current_workspace": membership.workspace,
        "has_calls": has_calls,
        "ranges": RANGES,
        "days": _days(request),
        "statuses": CallStatus.ALL,
        "keys": keys,
        "tools": dashboards.call_tools(workspace_id=workspace_id, since=timezone.now() - timedelta(days=90)),
        "zone": zone_of(request).key,
        "client_panel": "" if has_calls else key_page_panel(request, workspace_id, keys, None),
    }
    return render_to_string("monitoring/usage_panel.html", context, request=request)


@workspace_page
def usage_page(request: SignedInRequest, membership: Membership) -> HttpResponse:
    context = {"title": "Usage", "section": "usage", "panel": usage_panel(request, membership)}
    return render(request, "monitoring/usage.html", context)


@require_GET
@workspace_page
def usage_quotas(request: SignedInRequest, membership: Membership) -> HttpResponse:
    """The quota bars (polled every few seconds by the dashboard)."""
    context = {"usage": quota_usage(workspace_id=membership.workspace_id), "current_workspace": membership.workspace}
    return render(request, "billing/_quota_bars.html", context)


@require_GET
@workspace_page
def usage_charts(request: SignedInRequest, membership: Membership) -> JsonResponse:
    """The charts' data: calls per day by tool, p50/p95 latency and error rate per day, in the viewer's zone."""
    usage_rollup_all(workspace_id=membership.workspace_id)  # this workspace's latest calls, rolled up now
    window = Window.ending_now(_days(request), zone_of(request), timezone.now())
    return JsonResponse(
        {"zone": window.zone.key, **dashboards.charts(workspace_id=membership.workspace_id, window=window)}
    )


@require_GET
@workspace_page
def usage_summary(request: SignedInRequest, membership: Membership) -> HttpResponse:
    """Top tools and the per-key breakdown for the chosen range."""
    usage_rollup_all(workspace_id=membership.workspace_id)
    window = Window.ending_now(_days(request), zone_of(request), timezone.now())
    context = {
        "days": window.days,
        "top_tools": dashboards.top_tools(workspace_id=membership.workspace_id, since=window.start),
        "keys": dashboards.keys_breakdown(workspace_id=membership.workspace_id, since=window.start),
    }
    return render(request, "monitoring/_summary.html", context)


@require_GET
@workspace_page
def usage_calls(request: SignedInRequest, membership: Membership) -> HttpResponse:
    """A page of recent calls with the filters (htmx replaces the table)."""
    filters, raw = _filters(request, membership)
    page, following = dashboards.recent_calls(
        workspace_id=membership.workspace_id, filters=filters, cursor=request.GET.get("cursor", "")
    )
    query = {name: value for name, value in raw.items() if value}
    context = {
        "current_workspace": membership.workspace,
        "calls": page,
        "next_cursor": following,
        "query": query,
        "first_page": not request.GET.get("cursor"),
        "filtered": bool(query),
    }
    return render(request, "monitoring/_calls.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(events: Iterator[UsageEvent], zone: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(
        ["time", "tool", "status", "latency_ms", "transport", "api_key", "error_code", "ai_operations"]
    )
    for count, event in enumerate(events):
        if count >= EXPORT_MAX_ROWS:
            break
        yield writer.writerow(
            [
                event.at.astimezone(zone).isoformat(timespec="milliseconds"),
                event.tool,
                event.status,
                f"{event.latency_ms:.1f}",
                event.transport,
                event.api_key.prefix if event.api_key_id and event.api_key else "",
                "" if event.error_code is None else event.error_code,
                event.ai_operations,
            ]
        )


@require_GET
@workspace_page
def usage_calls_csv(request: SignedInRequest, membership: Membership) -> StreamingHttpResponse:
    """Every call the filters select, as CSV (streamed; times in the viewer's zone)."""
    filters, _raw = _filters(request, membership)
    events = dashboards.calls_for_export(workspace_id=membership.workspace_id, filters=filters)
    response = StreamingHttpResponse(_csv_rows(events, zone_of(request)), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="toolport-calls-{stamp}.csv"'
    return response
