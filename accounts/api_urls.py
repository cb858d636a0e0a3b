from django.urls import path

from accounts import api

workspace = "workspaces/<str:workspace_id>"

urlpatterns = [
    path("whoami", api.WhoAmIView.as_view(), name="whoami"),
    path("workspaces/", api.WorkspaceListView.as_view(), name="workspace-list"),
    path(f"{workspace}/", api.WorkspaceDetailView.as_view(), name="workspace-detail"),
    path(f"{workspace}/leave/", api.LeaveView.as_view(), name="workspace-leave"),
    path(f"{workspace}/members/", api.MemberListView.as_view(), name="member-list"),
    path(f"{workspace}/members/<str:member_id>/", api.MemberDetailView.as_view(), name="member-detail"),
    path(f"{workspace}/invitations/", api.InvitationListView.as_view(), name="invitation-list"),
    path(f"{workspace}/invitations/<str:invitation_id>/", api.InvitationDetailView.as_view(), name="invitation-detail"),
    path("invitations/accept/", api.InvitationAcceptView.as_view(), name="invitation-accept"),
    path(f"{workspace}/api-keys/", api.ApiKeyListView.as_view(), name="api-key-list"),
    path(f"{workspace}/api-keys/<str:key_id>/", api.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path(f"{workspace}/api-keys/<str:key_id>/revoke/", api.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path(f"{workspace}/api-keys/<str:key_id>/rotate/", api.ApiKeyRotateView.as_view(), name="api-key-rotate"),
]
