"""Limits that the plan decides. `billing` registers the function that reads them when it loads, so accounts
never imports billing."""

from collections.abc import Callable

from accounts.models import Workspace

_active_key_limit: Callable[[Workspace], int | None] | None = None


def active_key_limit_register(limit: Callable[[Workspace], int | None]) -> None:
    global _active_key_limit
    _active_key_limit = limit


def active_key_limit(workspace: Workspace) -> int | None:
    """How many active API keys the workspace may hold; None means no limit."""
    if _active_key_limit is None:
        raise RuntimeError("No key-limit provider is registered: is the 'billing' app installed?")
    return _active_key_limit(workspace)
