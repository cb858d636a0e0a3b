"""The accounts REST API (`/api/v1/`): the twin of every console action on workspaces, members, invitations and
API keys. Views parse input, call one selector or service, and serialise the result; errors become JSON in
core.api."""

from datetime import timedelta
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import api_keys, selectors, services
from accounts.api_keys import AuthenticatedKey
from accounts.models import Membership
from accounts.permissions import IsSignedIn, IsSignedInOrKey, is_key
from accounts.serializers import (
    ApiKeyCreateSerializer,
    ApiKeyIssuedSerializer,
    ApiKeyRotateSerializer,
    ApiKeySerializer,
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    WorkspaceDeleteSerializer,
    WorkspaceSerializer,
    WorkspaceWriteSerializer,
)


def _valid(serializer_class: Any, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class MembershipView(APIView):
    """Base for views under /workspaces/{workspace_id}/: resolves the caller's membership (404 if none)."""

    permission_classes = [IsSignedIn]

    def membership(self) -> Membership:
        return selectors.membership_get(user=self.request.user, workspace_id=self.kwargs["workspace_id"])


def _issued(issued: api_keys.IssuedKey) -> dict[str, Any]:
    data = dict(ApiKeySerializer(issued.key).data)
    data["key"] = issued.secret
    return data


class WhoAmIView(APIView):
    permission_classes = [IsSignedInOrKey]

    @extend_schema(summary="Who is calling: the signed-in user, or the API key and its workspace")
    def get(self, request: Request) -> Response:
        if is_key(request):
            key: AuthenticatedKey = request.auth
            workspace = selectors.workspace_get_for_key(
                workspace_id=key.workspace_id, key_workspace_id=key.workspace_id
            )
            return Response(
                {
                    "type": "api_key",
                    "workspace": {"id": str(workspace.pk), "name": workspace.name},
                    "key": {
                        "prefix": key.prefix,
                        "name": key.name,
                        "tools": list(key.tools) or "all",
                        "knowledge_bases": list(key.knowledge_bases) or "all",
                        "max_security_level": key.max_security_level,
                        "read_only": key.read_only,
                    },
                }
            )
        memberships = selectors.membership_list_for_user(user=request.user)
        return Response(
            {
                "type": "user",
                "email": request.user.email,
                "workspaces": [
                    {"id": str(m.workspace_id), "name": m.workspace.name, "role": m.role} for m in memberships
                ],
            }
        )


class WorkspaceListView(APIView):
    permission_classes = [IsSignedInOrKey]

    @extend_schema(
        summary="List your workspaces (with a key: the key's workspace)", responses=WorkspaceSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        if is_key(request):
            workspace = selectors.workspace_get_for_key(
                workspace_id=request.auth.workspace_id, key_workspace_id=request.auth.workspace_id
            )
            return Response(WorkspaceSerializer([workspace], many=True).data)
        memberships = selectors.membership_list_for_user(user=request.user)
        roles = {m.workspace_id: m.role for m in memberships}
        return Response(
            WorkspaceSerializer([m.workspace for m in memberships], many=True, context={"roles": roles}).data
        )

    @extend_schema(
        summary="Create a workspace (you become its owner)",
        request=WorkspaceWriteSerializer,
        responses={201: WorkspaceSerializer},
    )
    def post(self, request: Request) -> Response:
        if is_key(request):
            self.permission_denied(request, message=IsSignedIn.message)
        data = _valid(WorkspaceWriteSerializer, request)
        workspace = services.workspace_create(user=request.user, name=data["name"], request=request)
        return Response(
            WorkspaceSerializer(workspace, context={"roles": {workspace.pk: "owner"}}).data,
            status=status.HTTP_201_CREATED,
        )


class WorkspaceDetailView(MembershipView):
    permission_classes = [IsSignedInOrKey]

    @extend_schema(summary="Get a workspace", responses=WorkspaceSerializer)
    def get(self, request: Request, workspace_id: str) -> Response:
        if is_key(request):
            workspace = selectors.workspace_get_for_key(
                workspace_id=workspace_id, key_workspace_id=request.auth.workspace_id
            )
            return Response(WorkspaceSerializer(workspace).data)
        membership = self.membership()
        return Response(
            WorkspaceSerializer(
                membership.workspace, context={"roles": {membership.workspace_id: membership.role}}
            ).data
        )

    @extend_schema(
        summary="Rename a workspace (admins and owners)",
        request=WorkspaceWriteSerializer,
        responses=WorkspaceSerializer,
    )
    def patch(self, request: Request, workspace_id: str) -> Response:
        self._require_person(request)
        membership = self.membership()
        data = _valid(WorkspaceWriteSerializer, request)
        workspace = services.workspace_rename(actor=membership, name=data["name"], request=request)
        return Response(WorkspaceSerializer(workspace, context={"roles": {workspace.pk: membership.role}}).data)

    @extend_schema(
        summary="Delete a workspace and everything in it (owners; confirm with its exact name)",
        request=WorkspaceDeleteSerializer,
        responses={204: OpenApiResponse(description="Deleted")},
    )
    def delete(self, request: Request, workspace_id: str) -> Response:
        self._require_person(request)
        membership = self.membership()
        data = _valid(WorkspaceDeleteSerializer, request)
        services.workspace_delete(actor=membership, confirm_name=data["confirm_name"], request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _require_person(self, request: Request) -> None:
        if is_key(request):
            self.permission_denied(request, message=IsSignedIn.message)


class MemberListView(MembershipView):
    @extend_schema(summary="List members", responses=MemberSerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        members = selectors.member_list(workspace=self.membership().workspace)
        return Response(MemberSerializer(members, many=True).data)


class MemberDetailView(MembershipView):
    @extend_schema(summary="Change a member's role", request=MemberRoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, workspace_id: str, member_id: str) -> Response:
        actor = self.membership()
        member = selectors.member_get(workspace=actor.workspace, membership_id=member_id)
        data = _valid(MemberRoleSerializer, request)
        member = services.membership_change_role(actor=actor, member=member, role=data["role"], request=request)
        return Response(MemberSerializer(member).data)

    @extend_schema(summary="Remove a member", responses={204: OpenApiResponse(description="Removed")})
    def delete(self, request: Request, workspace_id: str, member_id: str) -> Response:
        actor = self.membership()
        member = selectors.member_get(workspace=actor.workspace, membership_id=member_id)
        services.membership_remove(actor=actor, member=member, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaveView(MembershipView):
    @extend_schema(summary="Leave a workspace", request=None, responses={204: OpenApiResponse(description="Left")})
    def post(self, request: Request, workspace_id: str) -> Response:
        services.membership_leave(member=self.membership(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(MembershipView):
    @extend_schema(summary="List pending invitations", responses=InvitationSerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        invitations = selectors.invitation_list(workspace=self.membership().workspace)
        return Response(InvitationSerializer(invitations, many=True).data)

    @extend_schema(
        summary="Invite someone by email (admins and owners)",
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
    )
    def post(self, request: Request, workspace_id: str) -> Response:
        data = _valid(InvitationCreateSerializer, request)
        invitation = services.invitation_create(
            actor=self.membership(), email=data["email"], role=data["role"], request=request
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailView(MembershipView):
    @extend_schema(summary="Revoke a pending invitation", responses={204: OpenApiResponse(description="Revoked")})
    def delete(self, request: Request, workspace_id: str, invitation_id: str) -> Response:
        actor = self.membership()
        invitation = selectors.invitation_get(workspace=actor.workspace, invitation_id=invitation_id)
        services.invitation_revoke(actor=actor, invitation=invitation, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(APIView):
    permission_classes = [IsSignedIn]

    @extend_schema(
        summary="Accept an invitation as the signed-in user",
        request=InvitationAcceptSerializer,
        responses={201: WorkspaceSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _valid(InvitationAcceptSerializer, request)
        membership = services.invitation_accept(token=data["token"], user=request.user, request=request)
        return Response(
            WorkspaceSerializer(
                membership.workspace, context={"roles": {membership.workspace_id: membership.role}}
            ).data,
            status=status.HTTP_201_CREATED,
        )


class ApiKeyListView(MembershipView):
    @extend_schema(summary="List API keys (prefixes only; never the keys)", responses=ApiKeySerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        keys = selectors.api_key_list(workspace=self.membership().workspace)
        return Response(ApiKeySerializer(keys, many=True).data)

    @extend_schema(
        summary="Create an API key (admins and owners); the response holds the full key, shown once",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyIssuedSerializer},
    )
    def post(self, request: Request, workspace_id: str) -> Response:
        data = _valid(ApiKeyCreateSerializer, request)
        issued = api_keys.api_key_issue(actor=self.membership(), request=request, **data)
        return Response(_issued(issued), status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class ApiKeyDetailView(MembershipView):
    @extend_schema(summary="Get an API key's details", responses=ApiKeySerializer)
    def get(self, request: Request, workspace_id: str, key_id: str) -> Response:
        key = selectors.api_key_get(workspace=self.membership().workspace, key_id=key_id)
        return Response(ApiKeySerializer(key).data)


class ApiKeyRevokeView(MembershipView):
    @extend_schema(summary="Revoke an API key now", request=None, responses=ApiKeySerializer)
    def post(self, request: Request, workspace_id: str, key_id: str) -> Response:
        actor = self.membership()
        key = selectors.api_key_get(workspace=actor.workspace, key_id=key_id)
        return Response(ApiKeySerializer(api_keys.api_key_revoke(actor=actor, key=key, request=request)).data)


class ApiKeyRotateView(MembershipView):
    @extend_schema(
        summary="Rotate an API key: a new key now, the old one revoked after the grace period",
        request=ApiKeyRotateSerializer,
        responses={201: ApiKeyIssuedSerializer},
    )
    def post(self, request: Request, workspace_id: str, key_id: str) -> Response:
        actor = self.membership()
        key = selectors.api_key_get(workspace=actor.workspace, key_id=key_id)
        data = _valid(ApiKeyRotateSerializer, request)
        issued = api_keys.api_key_rotate(
            actor=actor, key=key, grace=timedelta(seconds=data["grace_seconds"]), request=request
        )
        return Response(_issued(issued), status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})
