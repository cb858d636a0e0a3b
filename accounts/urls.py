from django.urls import path

from accounts import views

workspace = "w/<uuid:workspace_id>"

urlpatterns = [
    path("", views.console_home, name="home"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path(f"{workspace}/", views.dashboard, name="dashboard"),
    path(f"{workspace}/api-keys/", views.api_key_list, name="api_keys"),
    path(f"{workspace}/api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path(f"{workspace}/api-keys/<uuid:key_id>/rotate/", views.api_key_rotate, name="api_key_rotate"),
    path(f"{workspace}/settings/", views.workspace_settings, name="settings"),
    path(f"{workspace}/settings/rename/", views.workspace_rename, name="workspace_rename"),
    path(f"{workspace}/settings/delete/", views.workspace_delete, name="workspace_delete"),
    path(f"{workspace}/leave/", views.workspace_leave, name="workspace_leave"),
    path(f"{workspace}/members/<uuid:member_id>/role/", views.member_role, name="member_role"),
    path(f"{workspace}/members/<uuid:member_id>/remove/", views.member_remove, name="member_remove"),
    path(f"{workspace}/invitations/", views.invitation_create, name="invitation_create"),
    path(f"{workspace}/invitations/<uuid:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
]

# Last, after every app's console pages: the placeholder of sections still to come.
placeholder_patterns = [
    path(f"{workspace}/<slug:section>/", views.upcoming_section, name="section"),
]
