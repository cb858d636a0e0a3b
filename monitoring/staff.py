"""What the staff overview shows: every workspace's calls, errors and latency, the busiest workspaces, open MCP
sessions on this host, subscriptions and MRR by plan (from dj-stripe's copy of Stripe), ingestion backlog and
failures, and the upstream servers' circuit breakers."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Plan
from monitoring.dashboards import utc_day_of

LIVE_STATUSES = ("active", "trialing", "past_due")  # subscriptions that bring revenue (past_due: in its grace period)
MONTHS_PER = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}


def top_workspaces(*, since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.workspace_id, w.name, sum(r.calls), sum(r.failed) "
            "FROM monitoring_usagerollup r LEFT JOIN accounts_workspace w ON w.id = r.workspace_id "
            "WHERE r.granularity = 'day' AND r.bucket >= %s GROUP BY 1, 2 ORDER BY 3 DESC LIMIT %s",
            [utc_day_of(since), limit],
        )
        return [
            {"workspace_id": workspace_id, "name": name or "(deleted)", "calls": int(calls), "errors": int(failed or 0)}
            for workspace_id, name, calls, failed in cursor.fetchall()
        ]


def subscriptions_by_plan() -> list[dict[str, Any]]:
    """Live subscriptions and their monthly recurring revenue per plan, in each price's currency."""
    from djstripe.models import Subscription

    plans = {plan.stripe_price_id: plan for plan in Plan.objects.exclude(stripe_price_id="")}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for subscription in Subscription.objects.all().only("stripe_data"):
        data = subscription.stripe_data or {}
        if data.get("status") not in LIVE_STATUSES:
            continue
        for item in (data.get("items") or {}).get("data", []):
            price = item.get("price") or {}
            plan = plans.get(price.get("id", ""))
            recurring = price.get("recurring") or {}
            months = MONTHS_PER.get(recurring.get("interval", "month"), 1.0) * int(recurring.get("interval_count") or 1)
            monthly_cents = (price.get("unit_amount") or 0) * int(item.get("quantity") or 1) / months
            key = (plan.name if plan else price.get("nickname") or price.get("id", "?"), price.get("currency", "usd"))
            row = rows.setdefault(key, {"plan": key[0], "currency": key[1].upper(), "subscriptions": 0, "mrr": 0.0})
            row["subscriptions"] += 1
            row["mrr"] += monthly_cents / 100
    return sorted(rows.values(), key=lambda row: -row["mrr"])


def active_sessions() -> dict[str, int]:
    """Open MCP sessions by transport on this host (every process's samples, as /metrics sums them)."""
    from monitoring.metrics import metrics_exposition

    body, _content_type = metrics_exposition()
    found: dict[str, int] = defaultdict(int)
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "mcp_active_sessions":
            for sample in family.samples:
                found[sample.labels.get("transport", "?")] += int(sample.value)
    return dict(found)


def ingestion() -> dict[str, Any]:
    """Documents waiting or in progress, the Celery queues, and the latest failures."""
    from monitoring.metrics import celery_queue_lengths
    from rag.models import Document, DocumentStatus
    from rag.selectors import IN_PROGRESS

    try:
        queues = celery_queue_lengths()
    except Exception:
        queues = {}
    week = timezone.now() - timedelta(days=7)
    failures = (
        Document.objects.filter(status=DocumentStatus.FAILED, updated_at__gte=week)
        .select_related("knowledge_base", "workspace")
        .order_by("-updated_at")[:10]
    )
    return {
        "in_progress": Document.objects.filter(status__in=IN_PROGRESS).count(),
        "failed_week": Document.objects.filter(status=DocumentStatus.FAILED, updated_at__gte=week).count(),
        "queues": queues,
        "failures": list(failures),
    }


def upstream_circuits() -> list[dict[str, Any]]:
    from tools.models import UpstreamServer

    return [
        {
            "name": server.name,
            "enabled": server.enabled,
            "state": server.circuit_state,
            "failures": server.consecutive_failures,
            "last_error": server.last_error,
            "id": server.pk,
        }
        for server in UpstreamServer.objects.order_by("name")
    ]
