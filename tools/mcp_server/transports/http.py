"""What the HTTP transports share: headers, the origin check (DNS rebinding guard), the bounded body, the credential
the request carries, and answering an HttpError."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from accounts.authentication import key_from_headers
from accounts.errors import InvalidApiKey
from billing.admission import AdmissionUnavailable, RateLimited
from tools.mcp_server.pipeline.admission import SessionGone, admit
from tools.mcp_server.pipeline.auth import Credential, authenticate
from tools.mcp_server.pipeline.errors import HttpError, limit_http_error
from tools.mcp_server.sessions import SessionRecord, session_create

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


def headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def resource_metadata_url(scope: dict[str, Any], headers: dict[str, str]) -> str:
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{headers.get('host', 'localhost')}/.well-known/oauth-protected-resource/mcp"


@lru_cache(maxsize=256)
def _host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


def origin_check(headers: dict[str, str]) -> None:
    """The Host must be one of ours, and a browser's Origin must be ours or allowed."""
    host = headers.get("host", "")
    if not _host_allowed(host, tuple(settings.ALLOWED_HOSTS)):
        raise HttpError(403, "host_not_allowed", f"The Host header {host!r} is not one this server answers to.")
    origin = headers.get("origin")
    if not origin:
        return  # not a browser: nothing a rebinding attack could use
    allowed = {entry.rstrip("/") for entry in settings.MCP_ALLOWED_ORIGINS}
    origin_host = urlsplit(origin).netloc
    if origin.rstrip("/") in allowed or (origin_host and origin_host == host):
        return
    raise HttpError(403, "origin_not_allowed", f"Requests from the origin {origin!r} are not allowed.")


def unauthenticated(scope: dict[str, Any], headers: dict[str, str], error: InvalidApiKey) -> HttpError:
    challenge = f'Bearer resource_metadata="{resource_metadata_url(scope, headers)}"'
    return HttpError(401, error.code, error.message, headers={"WWW-Authenticate": challenge})


def refusal(scope: dict[str, Any], headers: dict[str, str], error: Exception) -> HttpError:
    """The HTTP answer to a message the pipeline refused (see pipeline.REFUSALS)."""
    if isinstance(error, InvalidApiKey):
        return unauthenticated(scope, headers, error)
    if isinstance(error, RateLimited):
        return limit_http_error(error)
    if isinstance(error, AdmissionUnavailable):
        return HttpError(503, error.code, error.message, headers={"Retry-After": "5"})
    if isinstance(error, SessionGone):
        return HttpError(404, "session_not_found", "Session not found: it expired or was closed. Initialize again.")
    raise error


async def credential_of(scope: dict[str, Any], headers: dict[str, str], raw_key: str | None = None) -> Credential:
    """The caller this request's credential stands for, or HttpError 401 with the RFC 9728 challenge."""
    try:
        raw_key = raw_key or key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        if raw_key is None:
            raise InvalidApiKey(
                "This endpoint needs an API key: send 'Authorization: Bearer <key>' (create one in the console)."
            )
        return await authenticate(raw_key)
    except InvalidApiKey as error:
        raise unauthenticated(scope, headers, error) from error


async def session_start(
    scope: dict[str, Any], headers: dict[str, str], credential: Credential, transport: str
) -> tuple[Credential, SessionRecord]:
    """Open a session for a transport whose connection is the session (legacy SSE, WebSocket): the opening counts
    as a message (admitted, so a revoked key or a spent rate is refused here), then the record, within the key's cap."""
    try:
        credential = await admit(credential)
        record = await session_create(
            key_id=credential.key_id,
            workspace_id=credential.workspace_id,
            transport=transport,
            max_sessions=credential.policy.max_concurrent_sessions,
        )
    except (InvalidApiKey, RateLimited, AdmissionUnavailable, SessionGone) as error:
        raise refusal(scope, headers, error) from error
    return credential, record


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if status >= 400 or content_type != "application/json":
        raw.append((b"cache-control", b"no-store"))
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, error: HttpError) -> None:
    await respond(send, error.status, error.body(), headers=error.headers)


async def body_read(receive: Receive) -> bytes:
    """The request body, refusing more than MCP_MAX_BODY_BYTES (413) before reading it all."""
    limit = settings.MCP_MAX_BODY_BYTES
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body") and message["type"] == "http.request":
        if len(body) > limit:
            raise HttpError(413, "body_too_large", f"The request body is larger than {limit:,} bytes.")
        return bytes(body)
    buffer = bytearray(body)
    while True:
        if message["type"] == "http.disconnect":
            raise HttpError(400, "disconnected", "The client went away.")
        if len(buffer) > limit:
            raise HttpError(413, "body_too_large", f"The request body is larger than {limit:,} bytes.")
        if not message.get("more_body"):
            return bytes(buffer)
        message = await receive()
        buffer.extend(message.get("body", b""))


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()
