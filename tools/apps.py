from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ToolsConfig(AppConfig):
    name = "tools"

    def ready(self) -> None:
        from accounts.navigation import Section, section_register
        from tools import builtin_tools  # noqa: F401 - registers the built-in tools

        section_register(Section("tools", "Tools", "console:tools", 30))

        from tools.events import registry_changed_subscribe
        from tools.mcp_server.notifications import list_changed_announce

        registry_changed_subscribe(list_changed_announce)
        registry_changed_subscribe(_access_epoch_bump)

        from accounts.navigation import key_panel_register
        from tools.mcp_server.clients import key_page_panel

        key_panel_register(key_page_panel)

        from django.conf import settings

        if settings.MCP_CONFORMANCE_WORKSPACE:  # only config.settings.conformance sets it
            from tools.mcp_server import conformance  # noqa: F401 - registers the conformance fixture

        post_migrate.connect(_sync_builtins, sender=self, dispatch_uid="tools.sync_builtins")

        from monitoring.metrics import global_tool_names_register
        from tools.builtins import builtin_get

        global_tool_names_register(builtin=lambda name: builtin_get(name) is not None, load=_global_tool_names)


def _access_epoch_bump(kind: str, workspace_id: object) -> None:
    """A registry change (already committed) invalidates the tool snapshots the MCP fast path keeps."""
    from core.epoch import access_epoch_bump

    access_epoch_bump()


def _global_tool_names() -> list[str]:
    """Global tools keep their names as metric labels; a workspace's own tools count as "custom"."""
    from tools.models import Tool

    return list(Tool.objects.filter(workspace__isnull=True).values_list("name", flat=True))


def _sync_builtins(**kwargs: object) -> None:
    from tools.services import builtin_tools_sync

    builtin_tools_sync()
