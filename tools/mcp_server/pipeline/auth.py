"""Who is calling: a credential (an API key now; OAuth access tokens will resolve here too) → its workspace, scopes,
plan, and the tools it may see, from this process's memory.

The one cache the endpoint keeps for callers. An entry is trusted only while the access epoch is the one it was read
under: every message's admission compares the epoch in the same round trip (`billing.admission.usage_admit`), and
when it moved (a key revoked or rotated, a plan changed, the registry changed) the process drops every entry and
reads the caller again (`reauthenticate`). So revocation reaches open WebSockets, SSE streams and sessions on their
next message, on every replica. Entries are also read again after MCP_CACHE_SECONDS and at the end of the plan's
period; a key's own expiry and a rotation's grace end are checked on every message.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from accounts.api_keys import AuthenticatedKey, api_key_authenticate, api_key_touch
from accounts.errors import InvalidApiKey
from billing.admission import access_epoch_read
from billing.quotas import QuotaPolicy, quota_policy
from core.threads import run_sync
from tools.models import Tool
from tools.selectors import visible_tools

MAX_ENTRIES = 10_000


@dataclass
class Credential:
    """An authenticated caller as of `epoch`. `raw` stays in memory only (to read the key again after the epoch
    moved) and is never logged."""

    raw: str = field(repr=False)
    digest: str
    key: AuthenticatedKey
    policy: QuotaPolicy
    epoch: str
    loaded_at: float
    tools: dict[str, Tool] | None = None  # what this key may see and call, by name (filled on first use)
    tool_list: list[dict[str, Any]] | None = None  # their tools/list definitions, in name order
    touched_at: float = 0.0

    @property
    def workspace_id(self) -> UUID:
        return self.key.workspace_id

    @property
    def key_id(self) -> UUID:
        return self.key.id

    def fresh(self, epoch: str | None) -> bool:
        return (
            self.epoch == epoch
            and time.monotonic() - self.loaded_at < settings.MCP_CACHE_SECONDS
            and timezone.now() < self.policy.period_end
        )


class _Cache:
    def __init__(self) -> None:
        self.epoch: str | None = None
        self.entries: dict[str, Credential] = {}
        self.loading: dict[str, asyncio.Future[Credential]] = {}
        self.loads = 0  # reads from the database (tests, profiles)

    def forget(self, epoch: str | None) -> None:
        self.entries.clear()
        self.epoch = epoch


_cache = _Cache()
_background: set[asyncio.Task[Any]] = set()


async def authenticate(raw_key: str) -> Credential:
    """The caller a raw key stands for; InvalidApiKey (401) when it is not a valid, active key."""
    digest = hashlib.sha256(raw_key.encode()).hexdigest()
    entry = _cache.entries.get(digest)
    if entry is None or not entry.fresh(_cache.epoch):
        entry = await _load(raw_key, digest)
    active_check(entry)
    _touch_later(entry)
    return entry


async def reauthenticate(credential: Credential, epoch: str) -> Credential:
    """After the epoch moved: drop every entry (anything may have changed) and read this caller again."""
    if _cache.epoch != epoch:
        _cache.forget(epoch)
    return await authenticate(credential.raw)


def active_check(credential: Credential) -> None:
    """A key's expiry and a rotation's grace end pass without any change to announce: check them per message."""
    key, now = credential.key, timezone.now()
    if key.revoked_at is not None and key.revoked_at <= now:
        raise InvalidApiKey("This API key has been revoked. Create a new key in the console.")
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidApiKey("This API key has expired. Create a new key in the console.")


async def _load(raw_key: str, digest: str) -> Credential:
    """Read the key and its plan, once however many messages of that key wait for them."""
    pending = _cache.loading.get(digest)
    if pending is not None:
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if pending.cancelled() and task is not None and not task.cancelling():
                return await _load(raw_key, digest)  # the request that was reading it was cancelled: read again
            raise
    future: asyncio.Future[Credential] = asyncio.get_running_loop().create_future()
    _cache.loading[digest] = future
    try:
        epoch = await access_epoch_read()  # before the reads, so the entry is never older than its epoch
        if _cache.epoch != epoch:
            _cache.forget(epoch)
        key, policy = await run_sync(_read)(raw_key)
        entry = Credential(raw=raw_key, digest=digest, key=key, policy=policy, epoch=epoch, loaded_at=time.monotonic())
        _cache.loads += 1
        if len(_cache.entries) >= MAX_ENTRIES:
            _cache.entries.clear()
        if _cache.epoch == epoch:
            _cache.entries[digest] = entry
        future.set_result(entry)
        return entry
    except BaseException as error:
        if isinstance(error, Exception):
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it
        else:
            future.cancel()  # waiters read the key themselves
        raise
    finally:
        _cache.loading.pop(digest, None)


def _read(raw_key: str) -> tuple[AuthenticatedKey, QuotaPolicy]:
    key = api_key_authenticate(raw_key=raw_key)
    return key, quota_policy(workspace_id=key.workspace_id)


async def tools_visible(credential: Credential) -> dict[str, Tool]:
    """The tools this caller may see and call, by name, read once per entry."""
    if credential.tools is None:
        rows = await run_sync(
            lambda: list(visible_tools(workspace_id=credential.workspace_id, api_key=credential.key, cached_plan=True))
        )()
        credential.tools = {tool.name: tool for tool in rows}
    return credential.tools


def _touch_later(credential: Credential) -> None:
    """The key's last-used time, written off the request, at most once a minute per key and process."""
    now = time.monotonic()
    if now - credential.touched_at < 60:
        return
    credential.touched_at = now
    task: asyncio.Task[None] = asyncio.ensure_future(run_sync(api_key_touch)(credential.key))
    _background.add(task)
    task.add_done_callback(_background.discard)


def cache_reset() -> None:
    """For tests: forget every caller this process holds."""
    _cache.forget(None)
