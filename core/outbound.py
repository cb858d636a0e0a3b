"""Outbound HTTP that cannot be turned against our own network (SSRF guard).

Every request the product makes to a URL someone configured (HTTP tools, upstream MCP servers, document URLs) goes
through `guarded_client()`:

- only `http` and `https`;
- the host is resolved by us, and the connection is refused if *any* address it resolves to is loopback, private,
  link-local, multicast, reserved, unspecified, carrier-grade NAT or a cloud metadata address (IPv4 and IPv6,
  including IPv4-mapped IPv6);
- the check happens inside the connection itself, on the very address the socket then connects to, so a DNS answer
  that changes between check and connect (rebinding) and every redirect hop are checked the same way;
- trusted internal hosts can be allowed explicitly (`OUTBOUND_ALLOWED_HOSTS`, `host` or `host:port`);
- responses are read with a size cap, under a timeout.

`guarded_async_client_mcp()` is the same guard for the MCP SDK, whose transports speak httpx2 (the SDK's own fork of
httpx): the check sits in httpcore2's network backend in the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpcore2
import httpx
import httpx2
from asgiref.sync import sync_to_async
from django.conf import settings

from core.errors import InvalidInput

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024


class OutboundRefused(InvalidInput):
    """The URL points somewhere Toolport will not connect to."""

    code = "outbound_refused"


class ResponseTooLarge(InvalidInput):
    code = "response_too_large"


def address_refusal(address: str) -> str | None:
    """Why connecting to this IP address is refused, or None if it is a public address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address"
    # Most specific first: Python counts loopback, link-local and unspecified ranges as private too.
    for flag, reason in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "an unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(ip, flag):
            return reason
    return None


def _allowed(host: str, port: int) -> bool:
    allowed = {entry.lower() for entry in settings.OUTBOUND_ALLOWED_HOSTS}
    return host.lower() in allowed or f"{host.lower()}:{port}" in allowed


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses to connect to for host:port; OutboundRefused if any of them is not public (or not allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OutboundRefused(f"The host {host} could not be resolved.") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if _allowed(host, port):
        return addresses
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise OutboundRefused(
                f"Refused to connect to {host}: it resolves to {address}, {reason}. Toolport only calls public "
                "internet addresses; an operator can allow a trusted internal host with OUTBOUND_ALLOWED_HOSTS."
            )
    return addresses


def check_url(url: str) -> None:
    """Refuse a URL before any request: the scheme, and where its host resolves to now."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise OutboundRefused(f"Only http and https URLs are allowed, not {parsed.scheme or 'a URL without a scheme'}.")
    if not parsed.host:
        raise OutboundRefused("The URL has no host.")
    resolve_public(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that passed the check, resolved once per connection."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in resolve_public(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                last_error = error
        raise last_error or httpcore.ConnectError(f"could not connect to {host}:{port}")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # httpx has no public switch for httpcore's network backend, so set it on the pool it built. TLS still
        # verifies the certificate against the host name (httpcore passes it to the handshake separately).
        assert isinstance(self._pool, httpcore.ConnectionPool)
        self._pool._network_backend = _GuardedBackend()


def _refuse_scheme_on_redirect(request: httpx.Request) -> None:
    if request.url.scheme not in ("http", "https"):
        raise OutboundRefused(f"Refused a redirect to a {request.url.scheme} URL.")


def guarded_client(*, timeout: float = 10.0, follow_redirects: bool = True, max_redirects: int = 5) -> httpx.Client:
    """An httpx client whose every connection (redirects included) passes the SSRF check."""
    return httpx.Client(
        transport=_GuardedTransport(trust_env=False),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        event_hooks={"request": [_refuse_scheme_on_redirect]},
        trust_env=False,
    )


def read_capped(response: httpx.Response, limit: int = DEFAULT_MAX_RESPONSE_BYTES) -> bytes:
    """The body of a streamed response, refusing more than `limit` bytes."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > limit:
            raise ResponseTooLarge(f"The response is larger than {limit:,} bytes, the most Toolport reads.")
    return bytes(body)


def fetch(
    method: str, url: str, *, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, **kwargs: Any
) -> tuple[httpx.Response, bytes]:
    """One guarded request: refuses unsafe URLs and redirects, caps the body; returns the response and its body."""
    check_url(url)
    timeout = kwargs.pop("timeout", 10.0)
    with guarded_client(timeout=timeout) as client, client.stream(method, url, **kwargs) as response:
        return response, read_capped(response, max_bytes)


class _GuardedAsyncBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's anyio backend, connecting only to addresses that passed the check (resolved in a thread)."""

    def __init__(self) -> None:
        from httpcore2._backends.anyio import AnyIOBackend

        self._backend = AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await sync_to_async(resolve_public, thread_sensitive=False)(host, port)
        except OutboundRefused as refusal:
            # The SDK turns transport errors into failed requests; keep our message on the error it raises.
            raise httpcore2.ConnectError(refusal.message) from refusal
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore2.ConnectError as error:
                last_error = error
        raise last_error or httpcore2.ConnectError(f"could not connect to {host}:{port}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("Unix sockets are not reachable through the outbound guard.")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _GuardedAsyncTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        assert isinstance(self._pool, httpcore2.AsyncConnectionPool)
        self._pool._network_backend = _GuardedAsyncBackend()


async def _refuse_scheme_on_redirect_async(request: httpx2.Request) -> None:
    if request.url.scheme not in ("http", "https"):
        raise OutboundRefused(f"Refused a redirect to a {request.url.scheme} URL.")


def guarded_async_client_mcp(
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
) -> httpx2.AsyncClient:
    """An httpx2 client for the MCP SDK's transports (same signature as the SDK's `create_mcp_http_client`), whose
    every connection passes the SSRF check. The SDK follows redirects itself, and only within the same origin."""
    return httpx2.AsyncClient(
        transport=_GuardedAsyncTransport(trust_env=False),
        headers=headers,
        timeout=timeout or httpx2.Timeout(30.0, read=300.0),
        auth=auth,
        follow_redirects=False,
        event_hooks={"request": [_refuse_scheme_on_redirect_async]},
        trust_env=False,
    )
