"""Background work of billing. Tasks take ids and call a service."""

from datetime import datetime
from uuid import UUID

from celery import shared_task

from billing.quotas import usage_flush
from billing.services import quota_notice_send


@shared_task(name="billing.usage_flush", ignore_result=True)
def usage_flush_task() -> int:
    """Move admitted usage from Redis into the durable ledger (beat runs it every few seconds)."""
    return usage_flush()


@shared_task(
    name="billing.quota_notice",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def quota_notice_task(workspace_id: str, metric: str, period_start: str, threshold: int) -> bool:
    """Email the owners that a quota crossed a threshold (idempotent: once per period)."""
    return quota_notice_send(
        workspace_id=UUID(workspace_id),
        metric=metric,
        period_start=datetime.fromisoformat(period_start),
        threshold=threshold,
    )
