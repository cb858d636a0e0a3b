"""MCP sessions, kept where every replica sees them: Redis (when REDIS_URL is set), else this process (the
single-process local default).

A session record holds what the pipeline needs to serve the session's next message anywhere: the key and workspace
it belongs to, the negotiated peer (version, client info and capabilities), its log level and resource
subscriptions. A record expires after MCP_SESSION_IDLE_SECONDS without a message; every admitted message keeps it
alive in the admission's own round trip (`touch`).

Each key's sessions are indexed by last use (a sorted set). A key at its plan's session cap that opens one more
evicts its least recently used session instead of being refused: clients that abandon sessions (a laptop closes its
lid) must not lock their key out for the idle expiry. The evicted session's stream, if one is open, is told
(`SESSION_CLOSED_EVENT` on its channel-layer group) and closes.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from billing.admission import AdmissionUnavailable, Touch
from core.redis_channel import redis_command as channel_command

logger = logging.getLogger(__name__)

SESSION_CLOSED_EVENT = "mcp.session_closed"


@dataclass
class Peer:
    """What the server knows about the client after `initialize`."""

    protocol_version: str
    client_info: dict[str, Any] | None = None
    client_capabilities: dict[str, Any] | None = None


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

    @property
    def owner(self) -> str:
        return self.key_id or f"anonymous:{self.workspace_id}"


def session_group(session_id: str) -> str:
    """The channel-layer group of one session's streams (legacy SSE output, resource updates, eviction)."""
    return f"mcp-s-{session_id}"


# --- storage ---------------------------------------------------------------------------------------------------------


class _MemoryStore:
    """One process's store (no REDIS_URL): values with expiry, and each key's sessions by last use."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, float]] = {}
        self.sets: dict[str, dict[str, float]] = {}

    async def get(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or value[1] < time.time():
            self.values.pop(key, None)
            return None
        return value[0]

    async def set(self, key: str, value: str, ttl: int) -> None:
        self.values[key] = (value, time.time() + ttl)

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)

    async def touch(self, touch: Touch) -> None:
        if touch.key in self.values:  # (a session closed meanwhile stays out of its key's index)
            self.values[touch.key] = (self.values[touch.key][0], time.time() + touch.ttl)
            self.sets.setdefault(touch.index, {})[touch.member] = time.time()

    async def zadd(self, key: str, member: str, score: float) -> None:
        self.sets.setdefault(key, {})[member] = score

    async def zrem(self, key: str, member: str) -> None:
        self.sets.get(key, {}).pop(member, None)

    async def live_by_use(self, key: str, since: float) -> list[str]:
        members = self.sets.get(key, {})
        for member, score in list(members.items()):
            if score < since:
                del members[member]
        return sorted(members, key=members.__getitem__)


async def redis_command(*command: Any) -> Any:
    """A command on the hot path's channel; Redis unreachable is AdmissionUnavailable (nothing can be served
    unmetered, and the transports answer it as 503 or a close), never a raw error."""
    try:
        return await channel_command(*command)
    except (RedisError, OSError) as error:
        logger.warning("mcp.sessions_redis_failed", exc_info=True)
        raise AdmissionUnavailable from error


class _RedisStore:
    """Sessions in Redis, on the pipelined channel the hot path shares (core.redis_channel)."""

    async def get(self, key: str) -> str | None:
        value = await redis_command("GET", key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, ttl: int) -> None:
        await redis_command("SET", key, value, "EX", ttl)

    async def delete(self, key: str) -> None:
        await redis_command("DEL", key)

    async def touch(self, touch: Touch) -> None:
        pass  # done by the admission script, in the message's one round trip

    async def zadd(self, key: str, member: str, score: float) -> None:
        await redis_command("ZADD", key, repr(score), member)
        await redis_command("EXPIRE", key, settings.MCP_SESSION_IDLE_SECONDS)

    async def zrem(self, key: str, member: str) -> None:
        await redis_command("ZREM", key, member)

    async def live_by_use(self, key: str, since: float) -> list[str]:
        await redis_command("ZREMRANGEBYSCORE", key, "-inf", repr(since))
        members = await redis_command("ZRANGE", key, 0, -1)
        return [member.decode() if isinstance(member, bytes) else str(member) for member in members]


_memory = _MemoryStore()
_redis = _RedisStore()


def _store() -> _MemoryStore | _RedisStore:
    return _redis if settings.REDIS_URL else _memory


def _key(*parts: str) -> str:
    return ":".join((settings.MCP_REDIS_PREFIX, *parts))


def _index(owner: str) -> str:
    return _key("key", owner, "sessions")


# --- sessions --------------------------------------------------------------------------------------------------------


async def session_create(
    *, key_id: Any, workspace_id: Any, transport: str, max_sessions: int | None, peer: Peer | None = None
) -> SessionRecord:
    """A new session for this key; at the plan's cap, the key's least recently used sessions make room."""
    store = _store()
    idle = settings.MCP_SESSION_IDLE_SECONDS
    record = SessionRecord(
        id=secrets.token_urlsafe(24),
        key_id=str(key_id) if key_id else None,
        workspace_id=str(workspace_id),
        transport=transport,
        peer=asdict(peer) if peer else None,
    )
    if max_sessions is not None:
        live = await store.live_by_use(_index(record.owner), time.time() - idle)
        for evicted in live[: max(len(live) - max_sessions + 1, 0)]:
            await _evict(store, record.owner, evicted)
    await store.set(_key("session", record.id), json.dumps(asdict(record)), idle)
    await store.zadd(_index(record.owner), record.id, time.time())
    return record


async def _evict(store: _MemoryStore | _RedisStore, owner: str, session_id: str) -> None:
    _recent.pop(session_id, None)
    await store.delete(_key("session", session_id))
    await store.zrem(_index(owner), session_id)
    logger.info("mcp.session_evicted", extra={"session": session_id[:8]})
    layer = get_channel_layer()
    if layer is not None:
        try:
            await layer.group_send(session_group(session_id), {"type": SESSION_CLOSED_EVENT})
        except Exception:  # the session is gone either way; its stream notices on its next message
            logger.warning("mcp.session_evict_notify_failed", exc_info=True)


# Records this process read lately, for the messages that follow (a session's messages come in bursts). Only what
# never changes is trusted from here without a read (key, workspace, transport, peer once set); that the session
# still exists is confirmed by each message's admission (the script's touch finds its key), and the log level a
# client set through another replica is seen within RECORD_CACHE_SECONDS.
RECORD_CACHE_SECONDS = 5.0
_recent: dict[str, tuple[SessionRecord, float]] = {}


async def session_get(session_id: str, *, recent: bool = False) -> SessionRecord | None:
    """The session; None if it never existed, expired, was closed or evicted. `recent`: a record this process read
    in the last RECORD_CACHE_SECONDS will do (for callers whose admission then confirms the session exists)."""
    if not session_id or len(session_id) > 64:
        return None
    if recent:
        hit = _recent.get(session_id)
        if hit is not None and time.monotonic() - hit[1] < RECORD_CACHE_SECONDS and hit[0].peer is not None:
            return hit[0]
    raw = await _store().get(_key("session", session_id))
    if raw is None:
        _recent.pop(session_id, None)
        return None
    return _remember(SessionRecord(**json.loads(raw)))


def _remember(record: SessionRecord) -> SessionRecord:
    if len(_recent) >= 10_000:
        _recent.clear()
    _recent[record.id] = (record, time.monotonic())
    return record


def session_touch(record: SessionRecord) -> Touch:
    """What admission does to keep the session alive and first in its key's last-use order."""
    return Touch(
        key=_key("session", record.id),
        ttl=settings.MCP_SESSION_IDLE_SECONDS,
        index=_index(record.owner),
        member=record.id,
    )


async def session_touch_local(record: SessionRecord) -> None:
    """The touch, for the in-process store (the PostgreSQL admission twin knows nothing of sessions)."""
    if not settings.REDIS_URL:
        await _memory.touch(session_touch(record))


async def session_update(session_id: str, **changes: Any) -> SessionRecord | None:
    store = _store()
    raw = await store.get(_key("session", session_id))
    if raw is None:
        return None
    data = {**json.loads(raw), **changes}
    if isinstance(data.get("peer"), Peer):
        data["peer"] = asdict(data["peer"])
    await store.set(_key("session", session_id), json.dumps(data), settings.MCP_SESSION_IDLE_SECONDS)
    return _remember(SessionRecord(**data))


async def subscription_change(session_id: str, uri: str, *, subscribe: bool) -> None:
    record = await session_get(session_id)
    if record is None:
        return
    uris = set(record.subscriptions)
    uris = uris | {uri} if subscribe else uris - {uri}
    await session_update(session_id, subscriptions=sorted(uris))


async def session_delete(record: SessionRecord) -> None:
    _recent.pop(record.id, None)
    store = _store()
    await store.delete(_key("session", record.id))
    await store.zrem(_index(record.owner), record.id)
