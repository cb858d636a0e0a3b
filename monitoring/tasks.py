"""Background work of monitoring (Celery beat): roll up usage, prune old raw events."""

from celery import shared_task

from monitoring.usage import usage_events_prune, usage_rollup_all


@shared_task(name="monitoring.usage_rollup", ignore_result=True)
def usage_rollup_task() -> int:
    return usage_rollup_all()


@shared_task(name="monitoring.usage_events_prune", ignore_result=True)
def usage_events_prune_task() -> int:
    return usage_events_prune()
