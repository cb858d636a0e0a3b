"""MCP sessions and per-key limits, kept where every replica sees them: Redis (when REDIS_URL is set), else this
process (the single-process local default).

A session record holds what the protocol core needs to serve the session's next message anywhere: the key and
workspace it belongs to, the negotiated peer (version, client info and capabilities), its log level and resource
subscriptions. Records expire after MCP_SESSION_IDLE_SECONDS without a request.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from core.errors import LimitReached
from tools.mcp_server.core import Peer


class TooManySessions(LimitReached):
    code = "too_many_sessions"


class RateLimited(LimitReached):
    code = "rate_limited"


@dataclass
class SessionRecord:
    id: str
    key_id: str | None
    workspace_id: str
    transport: str
    peer: dict[str, Any] | None = None
    log_level: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    @property
    def peer_state(self) -> Peer | None:
        return Peer(**self.peer) if self.peer else None


# --- storage ---------------------------------------------------------------------------------------------------------


class _MemoryStore:
    """One process's store (no REDIS_URL): values with expiry, sorted sets for per-key session counts."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, float]] = {}
        self.sets: dict[str, dict[str, float]] = {}
        self.counters: dict[str, tuple[int, float]] = {}

    async def get(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or value[1] < time.time():
            self.values.pop(key, None)
            return None
        return value[0]

    async def set(self, key: str, value: str, ttl: int) -> None:
        self.values[key] = (value, time.time() + ttl)

    async def expire(self, key: str, ttl: int) -> None:
        if key in self.values:
            self.values[key] = (self.values[key][0], time.time() + ttl)

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)

    async def zadd(self, key: str, member: str, score: float) -> None:
        self.sets.setdefault(key, {})[member] = score

    async def zrem(self, key: str, member: str) -> None:
        self.sets.get(key, {}).pop(member, None)

    async def zcount_since(self, key: str, since: float) -> int:
        members = self.sets.get(key, {})
        for member, score in list(members.items()):
            if score < since:
                del members[member]
        return len(members)

    async def incr(self, key: str, ttl: int) -> int:
        count, expires = self.counters.get(key, (0, 0.0))
        if expires < time.time():
            count, expires = 0, time.time() + ttl
        self.counters[key] = (count + 1, expires)
        return count + 1


class _RedisStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def get(self, key: str) -> str | None:
        value = await self.client.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl: int) -> None:
        await self.client.set(key, value, ex=ttl)

    async def expire(self, key: str, ttl: int) -> None:
        await self.client.expire(key, ttl)

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def zadd(self, key: str, member: str, score: float) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {member: score})
            pipe.expire(key, settings.MCP_SESSION_IDLE_SECONDS)
            await pipe.execute()

    async def zrem(self, key: str, member: str) -> None:
        await self.client.zrem(key, member)

    async def zcount_since(self, key: str, since: float) -> int:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", since)
            pipe.zcard(key)
            _removed, count = await pipe.execute()
        return int(count)

    async def incr(self, key: str, ttl: int) -> int:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, ttl, nx=True)
            count, _ = await pipe.execute()
        return int(count)


_memory = _MemoryStore()
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _RedisStore] = weakref.WeakKeyDictionary()


def _store() -> _MemoryStore | _RedisStore:
    if not settings.REDIS_URL:
        return _memory
    loop = asyncio.get_running_loop()
    store = _clients.get(loop)
    if store is None:
        store = _clients[loop] = _RedisStore(aioredis.Redis.from_url(settings.REDIS_URL))
    return store


def _key(*parts: str) -> str:
    return ":".join((settings.MCP_REDIS_PREFIX, *parts))


# --- sessions --------------------------------------------------------------------------------------------------------


async def session_create(
    *, key_id: Any, workspace_id: Any, transport: str, max_sessions: int | None, peer: Peer | None = None
) -> SessionRecord:
    """A new session for this key, unless the key already holds as many open sessions as its plan allows."""
    store = _store()
    idle = settings.MCP_SESSION_IDLE_SECONDS
    owner = str(key_id) if key_id else f"anonymous:{workspace_id}"
    if max_sessions is not None:
        open_now = await store.zcount_since(_key("key", owner, "sessions"), time.time() - idle)
        if open_now >= max_sessions:
            error = TooManySessions(
                f"This API key already has {open_now} open MCP sessions, the most its plan allows "
                f"({max_sessions}). Close one (or let it expire after {idle // 60} idle minutes), or upgrade the "
                "plan for more."
            )
            error.retry_after = 60
            raise error
    record = SessionRecord(
        id=secrets.token_urlsafe(24),
        key_id=str(key_id) if key_id else None,
        workspace_id=str(workspace_id),
        transport=transport,
        peer=asdict(peer) if peer else None,
    )
    await store.set(_key("session", record.id), json.dumps(asdict(record)), idle)
    await store.zadd(_key("key", owner, "sessions"), record.id, time.time())
    return record


async def session_get(session_id: str) -> SessionRecord | None:
    """The session, kept alive for another idle period; None if it never existed, expired or was closed."""
    if not session_id or len(session_id) > 64:
        return None
    store = _store()
    raw = await store.get(_key("session", session_id))
    if raw is None:
        return None
    record = SessionRecord(**json.loads(raw))
    idle = settings.MCP_SESSION_IDLE_SECONDS
    await store.expire(_key("session", session_id), idle)
    await store.zadd(
        _key("key", record.key_id or f"anonymous:{record.workspace_id}", "sessions"), record.id, time.time()
    )
    return record


async def session_update(session_id: str, **changes: Any) -> SessionRecord | None:
    store = _store()
    raw = await store.get(_key("session", session_id))
    if raw is None:
        return None
    data = {**json.loads(raw), **changes}
    if isinstance(data.get("peer"), Peer):
        data["peer"] = asdict(data["peer"])
    await store.set(_key("session", session_id), json.dumps(data), settings.MCP_SESSION_IDLE_SECONDS)
    return SessionRecord(**data)


async def subscription_change(session_id: str, uri: str, *, subscribe: bool) -> None:
    record = await session_get(session_id)
    if record is None:
        return
    uris = set(record.subscriptions)
    uris = uris | {uri} if subscribe else uris - {uri}
    await session_update(session_id, subscriptions=sorted(uris))


async def session_delete(record: SessionRecord) -> None:
    store = _store()
    await store.delete(_key("session", record.id))
    await store.zrem(_key("key", record.key_id or f"anonymous:{record.workspace_id}", "sessions"), record.id)


# --- rate limit ------------------------------------------------------------------------------------------------------


def rate_limit_key(key_id: Any, now: float) -> str:
    """The counter of this key's requests in the minute of `now` (the fast path counts in the same one)."""
    return _key("rpm", str(key_id), str(int(now // 60)))


def rate_limited(limit: int, now: float) -> RateLimited:
    error = RateLimited(
        f"This API key made more than {limit} requests this minute, the most its plan allows. "
        "Wait for the next minute, or upgrade the plan for a higher rate."
    )
    error.retry_after = max(1, int(60 - now % 60))
    return error


async def rate_limit_check(*, key_id: Any, limit: int | None) -> None:
    """Count one request of this key in the current minute; RateLimited (with Retry-After) beyond the plan's rate."""
    if limit is None or key_id is None:
        return
    now = time.time()
    count = await _store().incr(rate_limit_key(key_id, now), 120)
    if count > limit:
        raise rate_limited(limit, now)


# --- requests in flight (so a cancellation finds the exchange serving the request) -----------------------------------


async def inflight_set(session_id: str, request_id: Any, address: str) -> None:
    await _store().set(_key("inflight", session_id, str(request_id)), address, settings.MCP_REQUEST_MAX_SECONDS)


async def inflight_get(session_id: str, request_id: Any) -> str | None:
    return await _store().get(_key("inflight", session_id, str(request_id)))


async def inflight_delete(session_id: str, request_id: Any) -> None:
    await _store().delete(_key("inflight", session_id, str(request_id)))
