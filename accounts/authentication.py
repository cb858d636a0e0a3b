"""The one way programs authenticate: an API key in `Authorization: Bearer <key>` or `X-API-Key: <key>`.

`ApiKeyAuthentication` (DRF) and the MCP transports (`tools.mcp_server.transports.http`) both read the headers with
`key_from_headers` and verify with `accounts.api_keys.api_key_authenticate`, so the REST API and the MCP endpoint
agree on every case.
"""

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from accounts.api_keys import AuthenticatedKey, api_key_authenticate
from accounts.errors import InvalidApiKey
from core.errors import Unauthenticated


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The raw key a request carries, None if it carries none; InvalidApiKey if the header is malformed."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            credentials = credentials.strip()
            if not credentials or " " in credentials:
                raise InvalidApiKey("Malformed Authorization header: send 'Authorization: Bearer <your API key>'.")
            return credentials
    if x_api_key is not None:
        if not x_api_key.strip():
            raise InvalidApiKey("The X-API-Key header is empty: put your API key in it.")
        return x_api_key.strip()
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF: `request.auth` is the AuthenticatedKey; `request.user` stays anonymous (a key is not a person)."""

    def authenticate(self, request: Any) -> tuple[AnonymousUser, AuthenticatedKey] | None:
        try:
            raw_key = key_from_headers(request.headers.get("Authorization"), request.headers.get("X-API-Key"))
            if raw_key is None:
                return None
            return AnonymousUser(), api_key_authenticate(raw_key=raw_key)
        except InvalidApiKey as error:
            raise exceptions.AuthenticationFailed(error.message, code=error.code) from error

    def authenticate_header(self, request: Any) -> str:
        return Unauthenticated.challenge
