from django.urls import path

from tools import api

urlpatterns = [
    path("workspaces/<str:workspace_id>/tools/", api.ToolListView.as_view(), name="tool-list"),
    path("workspaces/<str:workspace_id>/tools/<str:name>/call/", api.ToolCallView.as_view(), name="tool-call"),
    path("workspaces/<str:workspace_id>/prompts/", api.PromptListView.as_view(), name="prompt-list"),
    path(
        "workspaces/<str:workspace_id>/prompts/<str:name>/render/", api.PromptRenderView.as_view(), name="prompt-render"
    ),
    path("workspaces/<str:workspace_id>/custom-tools/", api.CustomToolListView.as_view(), name="custom-tool-list"),
    path(
        "workspaces/<str:workspace_id>/custom-tools/<str:name>/",
        api.CustomToolDetailView.as_view(),
        name="custom-tool-detail",
    ),
]
