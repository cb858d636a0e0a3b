"""What the console shell shows on every page: the workspace switcher and the navigation."""

from typing import Any

from django.http import HttpRequest

from accounts import selectors
from accounts.navigation import banners, sections


def console(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "membership": membership,
        "current_workspace": membership.workspace,
        "console_nav": [(section.slug, section.label, section.url(membership.workspace_id)) for section in sections()],
        "switchable_memberships": selectors.membership_list_for_user(user=membership.user),
        "console_banners": banners(membership),
    }
