"""Writes on accounts: workspaces, memberships, invitations. API keys live in accounts.api_keys.

Every function is keyword-only, checks the acting member's role itself (callers never pre-filter), writes its
audit event in the same transaction, and raises the domain errors of accounts.errors.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import api_keys
from accounts.errors import (
    AlreadyInvited,
    AlreadyMember,
    ConfirmationMismatch,
    InvitationInvalid,
    LastOwner,
)
from accounts.models import Invitation, InvitationStatus, Membership, Role, User, Workspace
from core.audit import audit_record
from core.errors import InvalidInput

INVITATION_SALT = "accounts.invitation"


# --- users --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoStaffUser:
    email: str
    password: str | None  # set only when this call created the user: it is shown once and never stored


@transaction.atomic
def demo_staff_user_ensure(*, email: str) -> DemoStaffUser:
    """Create the local demo staff user with a random password on first run; later runs leave it alone."""
    if User.objects.filter(email__iexact=email).exists():
        return DemoStaffUser(email=email, password=None)
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(email=email, password=password)
    _email_address_mark_verified(user)
    workspace_create(user=user, name="Demo workspace")
    return DemoStaffUser(email=email, password=password)


def _email_address_mark_verified(user: User) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})


@transaction.atomic
def user_signed_up(*, user: User, request: Any = None) -> Workspace:
    """A new account gets its personal workspace; adapter for allauth's `user_signed_up` signal."""
    workspace = workspace_create(user=user, name="Personal", is_personal=True, request=request)
    audit_record(action="user.signup", actor=user, workspace=workspace, target=user, request=request)
    return workspace


def login_failed_record(*, email: str, request: Any = None) -> None:
    """Record a failed sign-in attempt (the email tried, never the password)."""
    audit_record(action="user.login_failed", request=request, detail={"email": email[:254]})


# --- workspaces ---------------------------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("Give the workspace a name.", details={"field": "name"})
    if len(name) > 80:
        raise InvalidInput("Workspace names are at most 80 characters.", details={"field": "name"})
    return name


@transaction.atomic
def workspace_create(*, user: User, name: str, is_personal: bool = False, request: Any = None) -> Workspace:
    """Create a workspace with `user` as its owner."""
    workspace = Workspace.objects.create(name=_clean_name(name), is_personal=is_personal, created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    audit_record(action="workspace.create", actor=user, workspace=workspace, target=workspace, request=request)
    return workspace


@transaction.atomic
def workspace_rename(*, actor: Membership, name: str, request: Any = None) -> Workspace:
    actor.require_role(Role.ADMIN, "rename the workspace")
    workspace = actor.workspace
    old_name, workspace.name = workspace.name, _clean_name(name)
    workspace.save(update_fields=["name", "updated_at"])
    audit_record(
        action="workspace.rename",
        actor=actor.user,
        workspace=workspace,
        target=workspace,
        request=request,
        detail={"from": old_name, "to": workspace.name},
    )
    return workspace


@transaction.atomic
def workspace_delete(*, actor: Membership, confirm_name: str, request: Any = None) -> None:
    """Delete a workspace with everything in it; the owner types its name to confirm."""
    actor.require_role(Role.OWNER, "delete the workspace")
    workspace = actor.workspace
    if (confirm_name or "").strip() != workspace.name:
        raise ConfirmationMismatch(
            f"Type the workspace name exactly ({workspace.name}) to confirm deletion.",
            details={"field": "confirm_name"},
        )
    api_keys.api_key_cache_forget_workspace(workspace=workspace)
    audit_record(
        action="workspace.delete",
        actor=actor.user,
        workspace=workspace,
        target=workspace,
        request=request,
        detail={"workspace_id": str(workspace.pk), "name": workspace.name},
    )
    workspace.delete()


# --- members ------------------------------------------------------------------------------------------------------


def _owner_count(workspace: Workspace) -> int:
    return Membership.objects.filter(workspace=workspace, role=Role.OWNER).count()


def _lock_memberships(workspace: Workspace) -> None:
    """Serialise role changes in one workspace so two owners cannot demote each other at once."""
    list(Membership.objects.select_for_update().filter(workspace=workspace).values_list("pk", flat=True))


@transaction.atomic
def membership_change_role(*, actor: Membership, member: Membership, role: str, request: Any = None) -> Membership:
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}: choose owner, admin or member.", details={"field": "role"})
    new_role = Role(role)
    actor.require_role(Role.ADMIN, "change roles")
    if Role.OWNER in (new_role, member.role):
        actor.require_role(Role.OWNER, "grant or take away the owner role")
    _lock_memberships(member.workspace)
    member.refresh_from_db()
    if member.role == Role.OWNER and new_role != Role.OWNER and _owner_count(member.workspace) == 1:
        raise LastOwner(
            f"{member.user.email} is the last owner of {member.workspace.name}. Make someone else an owner first."
        )
    old_role, member.role = member.role, new_role
    member.save(update_fields=["role", "updated_at"])
    audit_record(
        action="membership.role_change",
        actor=actor.user,
        workspace=member.workspace,
        target=member,
        request=request,
        detail={"member": member.user.email, "from": old_role, "to": new_role.value},
    )
    return member


@transaction.atomic
def membership_remove(*, actor: Membership, member: Membership, request: Any = None) -> None:
    if member.pk == actor.pk:
        membership_leave(member=actor, request=request)
        return
    actor.require_role(Role.ADMIN, "remove members")
    if member.role == Role.OWNER:
        actor.require_role(Role.OWNER, "remove an owner")
    _lock_memberships(member.workspace)
    audit_record(
        action="membership.remove",
        actor=actor.user,
        workspace=member.workspace,
        target=member,
        request=request,
        detail={"member": member.user.email, "role": member.role},
    )
    member.delete()


@transaction.atomic
def membership_leave(*, member: Membership, request: Any = None) -> None:
    _lock_memberships(member.workspace)
    if member.role == Role.OWNER and _owner_count(member.workspace) == 1:
        raise LastOwner(
            f"You are the last owner of {member.workspace.name}. Make someone else an owner, "
            "or delete the workspace, before you leave."
        )
    audit_record(
        action="membership.leave",
        actor=member.user,
        workspace=member.workspace,
        target=member,
        request=request,
        detail={"member": member.user.email, "role": member.role},
    )
    member.delete()


# --- invitations --------------------------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(str(invitation.pk), salt=INVITATION_SALT)


def invitation_url(invitation: Invitation) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[invitation_token(invitation)])


@transaction.atomic
def invitation_create(*, actor: Membership, email: str, role: str = Role.MEMBER, request: Any = None) -> Invitation:
    """Invite someone by email; they get a signed link that expires (INVITATION_MAX_AGE_DAYS)."""
    workspace = actor.workspace
    actor.require_role(Role.ADMIN, "invite people")
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError as error:
        raise InvalidInput(
            f"{email or 'An empty address'} is not a valid email address.", details={"field": "email"}
        ) from error
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}: choose owner, admin or member.", details={"field": "role"})
    if role == Role.OWNER:
        actor.require_role(Role.OWNER, "invite owners")
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise AlreadyMember(f"{email} is already a member of {workspace.name}.", details={"field": "email"})
    _invitations_expire(workspace=workspace)
    if Invitation.objects.filter(workspace=workspace, email__iexact=email, status=InvitationStatus.PENDING).exists():
        raise AlreadyInvited(
            f"{email} already has a pending invitation. Revoke it to send a new one.", details={"field": "email"}
        )
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        invited_by=actor.user,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
    )
    audit_record(
        action="invitation.create",
        actor=actor.user,
        workspace=workspace,
        target=invitation,
        request=request,
        detail={"email": email, "role": role},
    )
    transaction.on_commit(lambda: _invitation_send(invitation))
    return invitation


def _invitation_send(invitation: Invitation) -> None:
    context = {"invitation": invitation, "url": invitation_url(invitation), "days": settings.INVITATION_MAX_AGE_DAYS}
    send_mail(
        subject=f"Join {invitation.workspace.name} on Toolport",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


def _invitations_expire(*, workspace: Workspace) -> None:
    """Pending invitations past their expiry stop counting as pending (so a new one can be sent)."""
    Invitation.objects.filter(
        workspace=workspace, status=InvitationStatus.PENDING, expires_at__lte=timezone.now()
    ).update(status=InvitationStatus.REVOKED)


@transaction.atomic
def invitation_revoke(*, actor: Membership, invitation: Invitation, request: Any = None) -> None:
    actor.require_role(Role.ADMIN, "revoke invitations")
    if invitation.status != InvitationStatus.PENDING:
        raise InvitationInvalid(f"This invitation is already {invitation.get_status_display().lower()}.")
    invitation.status = InvitationStatus.REVOKED
    invitation.save(update_fields=["status", "updated_at"])
    audit_record(
        action="invitation.revoke",
        actor=actor.user,
        workspace=invitation.workspace,
        target=invitation,
        request=request,
        detail={"email": invitation.email},
    )


def invitation_from_token(*, token: str) -> Invitation:
    """The pending invitation a link names; raises InvitationInvalid with the reason otherwise."""
    try:
        invitation_id = signing.loads(
            token, salt=INVITATION_SALT, max_age=timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
        )
    except signing.SignatureExpired as error:
        raise InvitationInvalid("This invitation has expired. Ask for a new one.") from error
    except signing.BadSignature as error:
        raise InvitationInvalid("This invitation link is not valid. Check that you copied all of it.") from error
    invitation = Invitation.objects.select_related("workspace").filter(pk=invitation_id).first()
    if invitation is None:
        raise InvitationInvalid("This invitation no longer exists: its workspace may have been deleted.")
    if invitation.status == InvitationStatus.ACCEPTED:
        raise InvitationInvalid("This invitation has already been used.")
    if invitation.status == InvitationStatus.REVOKED:
        raise InvitationInvalid("This invitation was revoked. Ask for a new one.")
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid("This invitation has expired. Ask for a new one.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User, request: Any = None) -> Membership:
    """Join the workspace an invitation names, as the account the invitation was sent to."""
    invitation = invitation_from_token(token=token)
    invitation = Invitation.objects.select_for_update().select_related("workspace").get(pk=invitation.pk)
    if invitation.status != InvitationStatus.PENDING:
        raise InvitationInvalid("This invitation has already been used.")
    if invitation.email.lower() != user.email.lower():
        raise InvitationInvalid(
            f"This invitation was sent to {invitation.email}, but you are signed in as {user.email}. "
            f"Sign in with {invitation.email} to accept it."
        )
    if Membership.objects.filter(workspace=invitation.workspace, user=user).exists():
        raise AlreadyMember(f"You are already a member of {invitation.workspace.name}.")
    membership = Membership.objects.create(workspace=invitation.workspace, user=user, role=invitation.role)
    invitation.status = InvitationStatus.ACCEPTED
    invitation.accepted_by = user
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["status", "accepted_by", "accepted_at", "updated_at"])
    audit_record(
        action="invitation.accept",
        actor=user,
        workspace=invitation.workspace,
        target=membership,
        request=request,
        detail={"email": user.email, "role": invitation.role},
    )
    return membership
