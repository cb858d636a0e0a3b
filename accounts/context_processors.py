"""What the console shell shows on every page: the workspace switcher and the navigation."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from accounts import selectors
from accounts.views import UPCOMING_SECTIONS


def console(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    workspace_id = membership.workspace_id
    nav = [("dashboard", "Dashboard", reverse("console:dashboard", args=[workspace_id]))]
    nav.append(("api-keys", "API keys", reverse("console:api_keys", args=[workspace_id])))
    nav += [
        (slug, label, reverse("console:section", args=[workspace_id, slug]))
        for slug, (label, _description) in UPCOMING_SECTIONS.items()
    ]
    nav.append(("settings", "Settings", reverse("console:settings", args=[workspace_id])))
    return {
        "membership": membership,
        "current_workspace": membership.workspace,
        "console_nav": nav,
        "switchable_memberships": selectors.membership_list_for_user(user=membership.user),
    }
