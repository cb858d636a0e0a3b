"""Writes on the monitoring ledgers."""

from core.audit import AuditEntry
from monitoring.models import AuditEvent


def audit_event_store(entry: AuditEntry) -> AuditEvent:
    """Persist one audit entry; registered as the recorder behind `core.audit.audit_record`."""
    actor = entry.actor if getattr(entry.actor, "is_authenticated", False) else None
    target = entry.target
    return AuditEvent.objects.create(
        action=entry.action,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        workspace=entry.workspace,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        ip=entry.origin.ip,
        user_agent=entry.origin.user_agent,
        detail=entry.detail,
    )
