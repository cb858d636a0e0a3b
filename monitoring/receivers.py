"""A deleted workspace takes its usage events and rollups with it (they have no database constraint to cascade)."""

from typing import Any

from django.db.models.signals import post_delete
from django.dispatch import receiver

from accounts.models import Workspace
from monitoring.models import UsageDirtyHour, UsageEvent, UsageRollup


@receiver(post_delete, sender=Workspace, dispatch_uid="monitoring.workspace_usage_delete")
def workspace_usage_delete(sender: Any, instance: Workspace, **kwargs: Any) -> None:
    UsageEvent.objects.filter(workspace_id=instance.pk).delete()
    UsageRollup.objects.filter(workspace_id=instance.pk).delete()
    UsageDirtyHour.objects.filter(workspace_id=instance.pk).delete()
