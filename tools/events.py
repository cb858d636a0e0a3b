"""Registry changes, announced to whoever listens (the MCP endpoint pushes `notifications/*/list_changed`)."""

from collections.abc import Callable
from uuid import UUID

from django.db import transaction

# listener(kind, workspace_id): kind is "tools" or "prompts"; workspace_id is None for a global change.
Listener = Callable[[str, UUID | None], None]
_listeners: list[Listener] = []


def registry_changed_subscribe(listener: Listener) -> None:
    _listeners.append(listener)


def registry_changed(kind: str, workspace_id: UUID | None) -> None:
    """Tell every listener after the current transaction commits (never about a change that rolled back)."""

    def announce() -> None:
        for listener in list(_listeners):
            listener(kind, workspace_id)

    transaction.on_commit(announce)
