"""Reads on the monitoring ledgers, always scoped by workspace for tenants."""

from django.db.models import QuerySet

from monitoring.models import AuditEvent


def audit_event_list(*, workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(workspace=workspace).select_related("actor")
