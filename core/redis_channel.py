"""One pipelined Redis connection per event loop, for the commands on the MCP endpoint's hot path (admission, session
records).

redis-py's asyncio client spends most of a short command's time in Python (a pooled connection, retries, packing and
parsing per command); this channel, on hiredis (the C reader and command packer redis-py itself uses), makes a call
one `write` and a future resolved in reply order, under a tenth of that. Everything else talks to Redis through
redis-py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from django.conf import settings
from redis import asyncio as aioredis
from redis.connection import parse_url
from redis.exceptions import NoScriptError, RedisError

# A Redis that does not answer within this long is treated as unreachable: the connection is dropped (its replies
# come in order, so every call queued behind the late one is late too) and the next call opens a new one.
REDIS_TIMEOUT_SECONDS = 2.0


async def redis_command(*command: Any) -> Any:
    """One command on this loop's channel, its reply (ReplyError as RedisError, NOSCRIPT as NoScriptError); a Redis that
    does not answer within REDIS_TIMEOUT_SECONDS is ConnectionError (the channel's watchdog drops the connection).
    TLS URLs go through redis-py (the channel speaks plain TCP and unix sockets only)."""
    if settings.REDIS_URL.startswith("rediss://"):
        return await _tls_client().execute_command(*command)
    channel = await _channel()
    return await channel.call(*command)


class RedisChannel(asyncio.Protocol):
    """One pipelined Redis connection per event loop, on hiredis (the C reader and command packer redis-py itself
    uses): the commands of one event-loop turn go out in one write, and each call's future is resolved in reply
    order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()  # with the loop time each was sent
        self.transport: asyncio.Transport | None = None
        self.outgoing: list[bytes] = []  # commands of this event-loop turn, written together at its end
        self.watchdog: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, url: str) -> RedisChannel:
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            if "path" in options:
                _transport, channel = await loop.create_unix_connection(cls, options["path"])
            else:
                _transport, channel = await loop.create_connection(cls, options["host"], options.get("port", 6379))
            if options.get("password"):
                credentials = [options["username"]] if options.get("username") else []
                await channel.call("AUTH", *credentials, options["password"])
            if options.get("db"):
                await channel.call("SELECT", options["db"])
        return channel

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._watch()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future, _sent = self.waiting.popleft()
            if not future.done():  # (a caller that was cancelled)
                future.set_result(reply)

    def connection_lost(self, error: Exception | None) -> None:
        self.transport = None
        if self.watchdog is not None:
            self.watchdog.cancel()
        while self.waiting:
            future, _sent = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("Redis closed the connection"))

    def _watch(self) -> None:
        """Every quarter of the timeout: a reply older than REDIS_TIMEOUT_SECONDS drops the connection (its callers
        get ConnectionError; the next call opens a new one). One timer per connection instead of one per call."""
        loop = asyncio.get_running_loop()
        if self.waiting and loop.time() - self.waiting[0][1] > REDIS_TIMEOUT_SECONDS:
            if self.transport is not None:
                self.transport.abort()  # at once, even with unsent bytes: connection_lost fails the waiting calls
            return
        self.watchdog = loop.call_later(REDIS_TIMEOUT_SECONDS / 4, self._watch)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _flush(self) -> None:
        """One write (one system call) for every command queued in this turn of the loop."""
        outgoing, self.outgoing = self.outgoing, []
        if self.transport is not None and outgoing:
            self.transport.write(b"".join(outgoing))

    async def call(self, *command: Any) -> Any:
        if self.transport is None:
            raise ConnectionError("not connected to Redis")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((future, loop.time()))
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append(hiredis.pack_command(command))
        reply = await future
        if isinstance(reply, hiredis.ReplyError):
            raise NoScriptError(str(reply)) if str(reply).startswith("NOSCRIPT") else RedisError(str(reply))
        return reply


_channels: dict[asyncio.AbstractEventLoop, RedisChannel] = {}
_opening: dict[asyncio.AbstractEventLoop, asyncio.Future[RedisChannel]] = {}
_tls_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


async def _channel() -> RedisChannel:
    """This loop's channel, opened once however many calls wait for it."""
    loop = asyncio.get_running_loop()
    channel = _channels.get(loop)
    if channel is not None and channel.usable:
        return channel
    pending = _opening.get(loop)
    if pending is None:
        _forget_closed_loops(_channels)
        pending = _opening[loop] = asyncio.ensure_future(RedisChannel.open(settings.REDIS_URL))
        pending.add_done_callback(lambda _done: _opening.pop(loop, None))
    channel = _channels[loop] = await asyncio.shield(pending)
    return channel


def _tls_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _tls_clients.get(loop)
    if client is None:
        _forget_closed_loops(_tls_clients)
        client = _tls_clients[loop] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
    return client


def _forget_closed_loops(per_loop: dict[asyncio.AbstractEventLoop, Any]) -> None:
    for stale in [loop for loop in per_loop if loop.is_closed()]:
        per_loop.pop(stale, None)
