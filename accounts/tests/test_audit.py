"""The audit trail: what users and admins did, with who, where and from which address."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from accounts import api_keys, services
from accounts.models import Role, User
from accounts.tests.factories import PASSWORD, UserFactory, issue_key, workspace_with
from monitoring.models import AuditEvent

pytestmark = pytest.mark.django_db


def _actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("created_at").values_list("action", flat=True))


def test_signup_is_audited_with_the_new_personal_workspace(client):
    response = client.post(
        "/accounts/signup/",
        {"email": "newcomer@example.com", "password1": PASSWORD, "password2": PASSWORD},
        HTTP_USER_AGENT="pytest-browser/1.0",
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 302
    user = User.objects.get(email="newcomer@example.com")
    event = AuditEvent.objects.get(action="user.signup")
    assert event.actor == user
    assert event.workspace is not None
    assert event.workspace.name == "Personal"
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "pytest-browser/1.0"
    assert len(mail.outbox) == 1  # the verification email
    assert not EmailAddress.objects.get(user=user).verified


def test_failed_logins_are_audited_without_the_password(client):
    user = UserFactory.create()
    client.post("/accounts/login/", {"login": user.email, "password": "wrong password"}, REMOTE_ADDR="198.51.100.9")

    event = AuditEvent.objects.get(action="user.login_failed")
    assert event.detail == {"email": user.email}
    assert event.ip == "198.51.100.9"
    assert "wrong password" not in str(event.__dict__)


def test_key_lifecycle_is_audited_without_the_key():
    workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, name="ci", tools=["search"])
    rotated = api_keys.api_key_rotate(actor=owner, key=issued.key, grace=timedelta(minutes=5))
    api_keys.api_key_revoke(actor=owner, key=rotated.key)

    assert _actions(workspace=workspace) == ["api_key.create", "api_key.rotate", "api_key.revoke"]
    create = AuditEvent.objects.get(action="api_key.create")
    assert create.actor == owner.user
    assert create.detail["prefix"] == issued.key.prefix
    assert create.detail["tools"] == ["search"]
    rotate = AuditEvent.objects.get(action="api_key.rotate")
    assert rotate.detail == {"old_prefix": issued.key.prefix, "new_prefix": rotated.key.prefix, "grace_seconds": 300}
    for event in AuditEvent.objects.all():
        assert issued.secret not in str(event.detail)
        assert rotated.secret not in str(event.detail)


def test_membership_changes_and_workspace_deletion_are_audited():
    workspace, (owner, admin, member) = workspace_with(Role.OWNER, Role.ADMIN, Role.MEMBER)
    workspace_id = str(workspace.pk)
    services.membership_change_role(actor=owner, member=member, role=Role.ADMIN)
    services.membership_remove(actor=owner, member=admin)
    services.invitation_create(actor=owner, email="guest@example.com")
    services.workspace_delete(actor=owner, confirm_name=workspace.name)

    role_change = AuditEvent.objects.get(action="membership.role_change")
    assert role_change.detail == {"member": member.user.email, "from": "member", "to": "admin"}
    assert AuditEvent.objects.get(action="membership.remove").detail["member"] == admin.user.email
    deletion = AuditEvent.objects.get(action="workspace.delete")
    assert deletion.detail == {"workspace_id": workspace_id, "name": workspace.name}
    assert deletion.workspace is None  # the workspace is gone; the event stays
    assert AuditEvent.objects.filter(action="invitation.create").exists()
