"""URL routes for Django. The MCP transports (/mcp, /sse, /messages, /mcp/ws) are routed in config/asgi.py."""

from django.contrib import admin
from django.urls import include, path

from core import views as core_views

console_patterns = (
    [
        path("", core_views.console_section, name="dashboard"),
        path("<slug:section>/", core_views.console_section, name="section"),
    ],
    "console",
)

urlpatterns = [
    path("", core_views.landing, name="landing"),
    path("console/", include(console_patterns)),
    path("admin/", admin.site.urls),
    path("", include("monitoring.urls")),
]
