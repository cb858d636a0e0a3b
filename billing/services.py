"""Writes of billing other than the quota counters themselves (billing.quotas)."""

from datetime import datetime
from uuid import UUID

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from accounts.models import Membership, Role
from billing.models import Metric, QuotaNotice
from billing.quotas import quota_policy, upgrade_url


def quota_notice_send(*, workspace_id: UUID, metric: str, period_start: datetime, threshold: int) -> bool:
    """Email the workspace's owners that a quota reached `threshold` %; once per period. True if sent now."""
    try:
        with transaction.atomic():
            notice = QuotaNotice.objects.create(
                workspace_id=workspace_id, metric=metric, period_start=period_start, threshold=threshold
            )
    except IntegrityError:
        return False  # already sent this period (a retried task, or a second worker)
    owners = list(
        Membership.objects.filter(workspace_id=workspace_id, role=Role.OWNER)
        .select_related("user", "workspace")
        .values_list("user__email", flat=True)
    )
    if not owners:
        return False
    policy = quota_policy(workspace_id=workspace_id)
    context = {
        "workspace": notice.workspace,
        "metric": Metric(metric).label,
        "threshold": threshold,
        "limit": policy.limit(metric),
        "resets_at": policy.period_end,
        "upgrade_url": upgrade_url(workspace_id),
    }
    subject = (
        f"{notice.workspace.name} has used all its {Metric(metric).label} for this period"
        if threshold >= 100
        else f"{notice.workspace.name} has used {threshold}% of its {Metric(metric).label}"
    )
    send_mail(
        subject=subject,
        message=render_to_string("billing/email/quota_notice.txt", context),
        from_email=None,
        recipient_list=owners,
    )
    return True
