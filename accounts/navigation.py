"""The console's navigation. Each app registers its sections when it loads, so the shell (here) never imports the
apps above it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse


@dataclass(frozen=True)
class Section:
    slug: str
    label: str
    url_name: str
    order: int
    coming_soon: str = ""  # what the section will do, while it is a placeholder

    def url(self, workspace_id: object) -> str:
        if self.coming_soon:
            return reverse("console:section", args=[workspace_id, self.slug])
        return reverse(self.url_name, args=[workspace_id])


_sections: dict[str, Section] = {}


def section_register(section: Section) -> None:
    """Add or replace a section (an app that implements a placeholder replaces it)."""
    _sections[section.slug] = section


def sections() -> list[Section]:
    return sorted(_sections.values(), key=lambda section: section.order)


def placeholder(slug: str) -> Section | None:
    section = _sections.get(slug)
    return section if section and section.coming_soon else None


for _section in (
    Section("dashboard", "Dashboard", "console:dashboard", 0),
    Section("api-keys", "API keys", "console:api_keys", 10),
    Section(
        "knowledge", "Knowledge", "", 20, "Upload documents; Toolport chunks, embeds and serves them as MCP resources."
    ),
    Section("tools", "Tools", "", 30, "The tools and prompts your plan and keys can reach."),
    Section("usage", "Usage", "", 40, "API calls, AI operations and storage against your plan's monthly quotas."),
    Section("billing", "Billing", "", 50, "Your plan, invoices, and upgrades through Stripe."),
    Section("settings", "Settings", "console:settings", 90),
):
    section_register(_section)


# Banners: short notices every console page of a workspace shows (e.g. a used-up quota), registered by apps.
_banners: list[Callable[[Any], str | None]] = []


def banner_register(banner: Callable[[Any], str | None]) -> None:
    """`banner(membership)` returns a notice for that workspace, or None."""
    _banners.append(banner)


def banners(membership: Any) -> list[str]:
    return [notice for banner in _banners if (notice := banner(membership))]


# Panels on the API keys page (the MCP endpoint's client configurations), registered by the apps that own them.
# panel(request, workspace_id, keys, secret) -> HTML; `secret` is the full key on the page that shows a new key.
KeyPanel = Callable[[Any, Any, Any, str | None], str]
_key_panels: list[KeyPanel] = []


def key_panel_register(panel: KeyPanel) -> None:
    _key_panels.append(panel)


def key_panels(request: Any, workspace_id: Any, keys: Any, secret: str | None = None) -> list[str]:
    return [panel(request, workspace_id, keys, secret) for panel in _key_panels]


# Panels of the workspace dashboard (the console's home), registered by the apps that own them (usage, quotas).
# panel(request, membership) -> HTML.
DashboardPanel = Callable[[Any, Any], str]
_dashboard_panels: list[DashboardPanel] = []


def dashboard_panel_register(panel: DashboardPanel) -> None:
    _dashboard_panels.append(panel)


def dashboard_panels(request: Any, membership: Any) -> list[str]:
    return [panel(request, membership) for panel in _dashboard_panels]
