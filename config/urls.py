"""URL routes for Django. The MCP transports (/mcp, /sse, /messages, /mcp/ws) are routed in config/asgi.py."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import urls as account_urls
from accounts import views as account_views
from billing import urls as billing_urls
from billing import views as billing_views
from core import views as core_views
from monitoring import console_urls as monitoring_urls
from rag import urls as rag_urls
from tools import urls as tool_urls
from tools.mcp_server import views as mcp_views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("billing.api_urls")),
    path("", include("tools.api_urls")),
    path("", include("rag.api_urls")),
]

# One "console" namespace composed from each app's pages; the placeholder catch-all goes last.
console = [
    *account_urls.urlpatterns,
    *billing_urls.console_patterns,
    *tool_urls.console_patterns,
    *rag_urls.console_patterns,
    *monitoring_urls.console_patterns,
    *account_urls.placeholder_patterns,
]

urlpatterns = [
    path("", core_views.landing, name="landing"),
    path(
        ".well-known/oauth-protected-resource/mcp",
        mcp_views.protected_resource_metadata,
        name="mcp-resource-metadata",
    ),
    path("accounts/", include("allauth.urls")),
    path("console/", include((console, "console"))),
    path("pricing/", billing_views.pricing, name="pricing"),
    path("pricing/<slug:tier>/checkout/", billing_views.pricing_checkout, name="pricing_checkout"),
    path("invitations/<str:token>/", account_views.invitation_accept, name="invitation_accept"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("admin/", admin.site.urls),
    path("", include("monitoring.urls")),
]
