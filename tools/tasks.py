"""Background work of the registry."""

from celery import shared_task

from tools.upstream import upstream_refresh_due


@shared_task(name="tools.upstream_refresh", ignore_result=True)
def upstream_refresh_task() -> dict[str, str]:
    """Re-import the upstream servers whose last sync is older than UPSTREAM_REFRESH_SECONDS (beat, each minute)."""
    return upstream_refresh_due()
