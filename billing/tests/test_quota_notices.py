"""Owners are emailed once per period when a quota reaches 80 % and 100 %, by a real Celery worker; the console
shows a banner while a quota is used up."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.urls import reverse

from accounts.models import Role
from accounts.tests.factories import MembershipFactory
from billing.models import Metric, QuotaNotice
from billing.quotas import QuotaExceeded, usage_consume
from billing.tests.factories import workspace_on_plan
from config.celery import app

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def celery_worker():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def _wait_for_mail(count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(mail.outbox) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mail.outbox) == count, [message.subject for message in mail.outbox]


def test_owners_get_one_email_at_80_and_one_at_100_percent(celery_worker, client):
    workspace = workspace_on_plan(api_calls=10)
    owner = MembershipFactory.create(workspace=workspace, role=Role.OWNER)
    MembershipFactory.create(workspace=workspace, role=Role.MEMBER)

    for _ in range(7):
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    time.sleep(0.5)
    assert mail.outbox == []

    usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)  # 8 of 10
    _wait_for_mail(1)
    assert mail.outbox[0].to == [owner.user.email]
    assert "used 80% of its API calls" in mail.outbox[0].subject

    usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS, amount=2)  # 10 of 10
    _wait_for_mail(2)
    assert "used all its API calls" in mail.outbox[1].subject
    assert reverse("console:billing", args=[workspace.pk]) in mail.outbox[1].body

    with pytest.raises(QuotaExceeded):
        usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
    time.sleep(0.5)
    assert len(mail.outbox) == 2
    assert QuotaNotice.objects.filter(workspace=workspace).count() == 2

    client.force_login(owner.user)
    page = client.get(reverse("console:dashboard", args=[workspace.pk])).content.decode()
    assert "This workspace has used all its API calls for this period" in page
