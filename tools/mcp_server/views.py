"""HTTP pages that belong to the MCP endpoint but not to a transport."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def protected_resource_metadata(request: HttpRequest) -> JsonResponse:
    """RFC 9728 metadata of the MCP endpoint, named by the `WWW-Authenticate` challenge of a 401.

    Toolport's MCP endpoint takes API keys as bearer tokens (`Authorization: Bearer tp_live_…`); keys are created in
    the console, so no authorization server is listed yet."""
    base = request.build_absolute_uri("/").rstrip("/")
    response = JsonResponse(
        {
            "resource": f"{base}/mcp",
            "resource_name": "Toolport MCP endpoint",
            "bearer_methods_supported": ["header"],
            "resource_documentation": f"{base}/docs/mcp",
        }
    )
    response["Cache-Control"] = "public, max-age=3600"
    return response
