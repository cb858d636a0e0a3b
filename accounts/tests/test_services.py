"""Workspaces, members and invitations, through the services every surface calls."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.errors import (
    AlreadyInvited,
    AlreadyMember,
    ConfirmationMismatch,
    InvitationInvalid,
    LastOwner,
    RoleRequired,
)
from accounts.models import Invitation, Membership, Role, User, Workspace
from accounts.tests.factories import UserFactory, workspace_with
from core.errors import InvalidInput

pytestmark = pytest.mark.django_db


def test_demo_staff_user_gets_a_password_once_and_a_workspace():
    first = services.demo_staff_user_ensure(email="admin@toolport.localhost")
    again = services.demo_staff_user_ensure(email="ADMIN@toolport.localhost")

    assert first.password is not None
    assert len(first.password) >= 16
    assert again.password is None
    user = User.objects.get(email="admin@toolport.localhost")
    assert user.is_staff
    assert user.check_password(first.password)
    assert Membership.objects.filter(user=user, role=Role.OWNER).count() == 1


def test_users_sign_in_by_email_not_username():
    user = User.objects.create_user(email="Someone@Example.COM", password="a long passphrase")
    assert user.email == "Someone@example.com"
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user(email="", password="x")


def test_creating_a_workspace_makes_the_creator_its_owner():
    user = UserFactory.create()
    workspace = services.workspace_create(user=user, name="  Research   team ")
    assert workspace.name == "Research team"
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.OWNER
    with pytest.raises(InvalidInput, match="name"):
        services.workspace_create(user=user, name="   ")


def test_rename_needs_an_admin():
    _workspace, (_owner, admin, member) = workspace_with(Role.OWNER, Role.ADMIN, Role.MEMBER)
    assert services.workspace_rename(actor=admin, name="Renamed").name == "Renamed"
    with pytest.raises(RoleRequired):
        services.workspace_rename(actor=member, name="Nope")


def test_deleting_a_workspace_needs_its_owner_and_its_exact_name():
    workspace, (owner, admin) = workspace_with(Role.OWNER, Role.ADMIN)
    with pytest.raises(RoleRequired):
        services.workspace_delete(actor=admin, confirm_name=workspace.name)
    with pytest.raises(ConfirmationMismatch):
        services.workspace_delete(actor=owner, confirm_name=workspace.name.upper())
    assert Workspace.objects.filter(pk=workspace.pk).exists()

    services.workspace_delete(actor=owner, confirm_name=workspace.name)
    assert not Workspace.objects.filter(pk=workspace.pk).exists()


def test_the_last_owner_can_neither_leave_nor_be_demoted():
    _workspace, (owner, admin) = workspace_with(Role.OWNER, Role.ADMIN)
    with pytest.raises(LastOwner):
        services.membership_leave(member=owner)
    with pytest.raises(LastOwner):
        services.membership_change_role(actor=owner, member=owner, role=Role.ADMIN)

    services.membership_change_role(actor=owner, member=admin, role=Role.OWNER)
    services.membership_leave(member=owner)  # another owner now exists
    assert not Membership.objects.filter(pk=owner.pk).exists()


def test_admins_manage_members_but_not_owners():
    _workspace, (owner, admin, member) = workspace_with(Role.OWNER, Role.ADMIN, Role.MEMBER)
    services.membership_change_role(actor=admin, member=member, role=Role.ADMIN)
    with pytest.raises(RoleRequired):
        services.membership_change_role(actor=admin, member=member, role=Role.OWNER)
    with pytest.raises(RoleRequired):
        services.membership_change_role(actor=admin, member=owner, role=Role.MEMBER)
    with pytest.raises(RoleRequired):
        services.membership_remove(actor=admin, member=owner)
    services.membership_remove(actor=admin, member=member)
    with pytest.raises(InvalidInput, match="Unknown role"):
        services.membership_change_role(actor=owner, member=admin, role="superuser")


def test_members_cannot_manage_anyone_but_can_leave():
    _workspace, (owner, member) = workspace_with(Role.OWNER, Role.MEMBER)
    with pytest.raises(RoleRequired):
        services.membership_remove(actor=member, member=owner)
    with pytest.raises(RoleRequired):
        services.invitation_create(actor=member, email="new@example.com")
    services.membership_leave(member=member)


def test_an_invitation_is_emailed_and_accepted_once(django_capture_on_commit_callbacks):
    workspace, (owner,) = workspace_with(Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(actor=owner, email="New.Person@example.com", role=Role.ADMIN)

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["New.Person@example.com"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invitations/" in line)
    token = link.rstrip("/").rsplit("/", 1)[1]

    newcomer = UserFactory.create(email="new.person@example.com")
    membership = services.invitation_accept(token=token, user=newcomer)
    assert membership.workspace == workspace
    assert membership.role == Role.ADMIN
    with pytest.raises(InvitationInvalid, match="already been used"):
        services.invitation_accept(token=token, user=newcomer)


def test_an_invitation_is_for_the_address_it_was_sent_to():
    _workspace, (owner,) = workspace_with(Role.OWNER)
    invitation = services.invitation_create(actor=owner, email="invitee@example.com")
    with pytest.raises(InvitationInvalid, match=r"sent to invitee@example\.com"):
        services.invitation_accept(token=services.invitation_token(invitation), user=UserFactory.create())


def test_bad_invitations_are_refused_with_a_reason():
    _workspace, (owner, member) = workspace_with(Role.OWNER, Role.MEMBER)
    with pytest.raises(AlreadyMember):
        services.invitation_create(actor=owner, email=member.user.email.upper())
    services.invitation_create(actor=owner, email="twice@example.com")
    with pytest.raises(AlreadyInvited):
        services.invitation_create(actor=owner, email="Twice@example.com")
    with pytest.raises(InvalidInput, match="not a valid email"):
        services.invitation_create(actor=owner, email="not-an-email")
    with pytest.raises(InvitationInvalid, match="not valid"):
        services.invitation_from_token(token="forged-token")

    expired = services.invitation_create(actor=owner, email="late@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvitationInvalid, match="expired"):
        services.invitation_from_token(token=services.invitation_token(expired))
    services.invitation_create(actor=owner, email="late@example.com")  # an expired one does not block a new one

    revoked = Invitation.objects.get(email="twice@example.com")
    services.invitation_revoke(actor=owner, invitation=revoked)
    with pytest.raises(InvitationInvalid, match="revoked"):
        services.invitation_from_token(token=services.invitation_token(revoked))


def test_only_owners_invite_owners():
    _workspace, (owner, admin) = workspace_with(Role.OWNER, Role.ADMIN)
    with pytest.raises(RoleRequired):
        services.invitation_create(actor=admin, email="boss@example.com", role=Role.OWNER)
    services.invitation_create(actor=owner, email="boss@example.com", role=Role.OWNER)
