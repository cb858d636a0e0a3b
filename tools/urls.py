from django.urls import path

from tools import views

console_patterns = [
    path("w/<uuid:workspace_id>/tools/", views.tool_list, name="tools"),
    path("w/<uuid:workspace_id>/tools/new/", views.custom_tool_new, name="custom_tool_new"),
    path("w/<uuid:workspace_id>/tools/<str:name>/edit/", views.custom_tool_edit, name="custom_tool_edit"),
    path("w/<uuid:workspace_id>/tools/<str:name>/delete/", views.custom_tool_delete, name="custom_tool_delete"),
    path("w/<uuid:workspace_id>/tools/<str:name>/", views.tool_try, name="tool_try"),
]
