"""REST API permissions: who is calling (a signed-in person, or a program with a key). Roles inside a workspace
are checked by the services themselves."""

from typing import Any

from rest_framework.permissions import BasePermission

from accounts.api_keys import AuthenticatedKey


def is_key(request: Any) -> bool:
    return isinstance(request.auth, AuthenticatedKey)


class IsSignedInOrKey(BasePermission):
    message = "Sign in, or send an API key."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated) or is_key(request)


class IsSignedIn(BasePermission):
    """Managing workspaces, members, invitations and keys needs a person; an API key cannot do it."""

    message = "API keys cannot manage workspaces, members, invitations or keys. Sign in to the console instead."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)
