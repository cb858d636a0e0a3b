"""Reads on accounts, shared by the console, the REST API and the MCP endpoint. Tenant scoping lives here: a
workspace is only ever reached through the caller's membership, and anything else answers "not found"."""

from typing import Any
from uuid import UUID

from django.db.models import Count, QuerySet

from accounts.errors import ApiKeyNotFound, InvitationNotFound, MemberNotFound, WorkspaceNotFound
from accounts.models import ApiKey, Invitation, InvitationStatus, Membership, User, Workspace

_NO_SUCH_ID = UUID(int=0)


def _uuid(value: Any) -> UUID:
    """The id as a UUID; a malformed id becomes one that matches nothing (so it answers "not found")."""
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except (TypeError, ValueError):
        return _NO_SUCH_ID


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    """The workspaces a user belongs to, as memberships (role included), by name."""
    return (
        Membership.objects.filter(user=user)
        .select_related("workspace")
        .annotate(member_count=Count("workspace__memberships"))
        .order_by("workspace__name")
    )


def membership_get(*, user: User, workspace_id: Any) -> Membership:
    """The user's membership of a workspace; WorkspaceNotFound if the id is unknown or not theirs."""
    membership = (
        Membership.objects.select_related("workspace", "user")
        .filter(user=user, workspace_id=_uuid(workspace_id))
        .first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    if membership is None:
        raise WorkspaceNotFound("No such workspace, or you are not a member of it.")
    return membership


def workspace_get_for_key(*, workspace_id: Any, key_workspace_id: UUID) -> Workspace:
    """The workspace an API key belongs to, if that is the one asked for."""
    if _uuid(workspace_id) != key_workspace_id:
        raise WorkspaceNotFound("No such workspace, or this key does not belong to it.")
    return Workspace.objects.get(pk=key_workspace_id)


def member_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("created_at")


def member_get(*, workspace: Workspace, membership_id: Any) -> Membership:
    member = member_list(workspace=workspace).select_related("workspace").filter(pk=_uuid(membership_id)).first()
    if member is None:
        raise MemberNotFound("No such member in this workspace.")
    return member


def invitation_list(*, workspace: Workspace, pending_only: bool = True) -> QuerySet[Invitation]:
    invitations = Invitation.objects.filter(workspace=workspace).select_related("invited_by")
    return invitations.filter(status=InvitationStatus.PENDING) if pending_only else invitations


def invitation_get(*, workspace: Workspace, invitation_id: Any) -> Invitation:
    invitation = (
        Invitation.objects.select_related("workspace").filter(workspace=workspace, pk=_uuid(invitation_id)).first()
    )
    if invitation is None:
        raise InvitationNotFound("No such invitation in this workspace.")
    return invitation


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(workspace=workspace).select_related("created_by", "rotated_to")


def api_key_get(*, workspace: Workspace, key_id: Any) -> ApiKey:
    key = api_key_list(workspace=workspace).select_related("workspace").filter(pk=_uuid(key_id)).first()
    if key is None:
        raise ApiKeyNotFound("No such API key in this workspace.")
    return key
