"""Background work of billing."""

from celery import shared_task

from billing.quotas import usage_flush


@shared_task(name="billing.usage_flush", ignore_result=True)
def usage_flush_task() -> int:
    """Move admitted usage from Redis into the durable ledger (beat runs it every few seconds)."""
    return usage_flush()
