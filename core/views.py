"""The public landing page and the console shell's placeholder sections."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

# The console's navigation, in order: (url name, label, what the section will do).
CONSOLE_SECTIONS: list[tuple[str, str, str]] = [
    ("dashboard", "Dashboard", "Calls, quotas and recent activity for your workspace at a glance."),
    ("api-keys", "API keys", "Create, scope, rotate and revoke the keys your MCP clients use."),
    ("knowledge", "Knowledge", "Upload documents; Toolport chunks, embeds and serves them as MCP resources."),
    ("tools", "Tools", "The tools and prompts your plan and keys can reach."),
    ("usage", "Usage", "API calls, AI operations and storage against your plan's monthly quotas."),
    ("billing", "Billing", "Your plan, invoices, and upgrades through Stripe."),
    ("settings", "Settings", "Workspace name, members, roles and invitations."),
]


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html")


@login_required
def console_section(request: HttpRequest, section: str = "dashboard") -> HttpResponse:
    for slug, label, description in CONSOLE_SECTIONS:
        if slug == section:
            return render(
                request,
                "console/coming_soon.html",
                {"section": slug, "title": label, "description": description},
            )
    raise Http404("No such console section.")
