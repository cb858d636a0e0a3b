"""Admission of MCP messages: the access epoch, the key's requests per minute and the quota, in one round trip.

Every MCP message the endpoint serves is admitted here first (`usage_admit`). One atomic step checks that the
caller's caches are still current (the access epoch, see `core.epoch`), counts the key's request in this minute
against the plan's rate, checks that every charge (API calls, AI operations) fits under its quota, and only then
charges them all, together, keeping the MCP session alive in the same step. Nothing is charged when anything is
refused, and the total admitted never exceeds a limit at any concurrency.

Two backends, one contract:

- **Redis** (`REDIS_URL` set): one Lua script (`_SCRIPT`), sent by hash on one pipelined connection per event loop.
  The quota counters and the usage stream are `billing.quotas.RedisCounters`' own, so `usage_flush` moves what was
  admitted here into the durable ledger; a counter missing in Redis is seeded from that ledger.
- **PostgreSQL** (no Redis, the single-machine default): one call of the SQL function `billing_usage_admit`
  (migration 0004), the script's twin, run in a worker thread on that thread's Django connection. It locks the quota
  counters, so it is exact like `DatabaseCounters.consume`, and writes the ledger rows at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from redis.exceptions import NoScriptError, RedisError

from billing.quotas import (
    COUNTED_METRICS,
    QuotaPolicy,
    RedisCounters,
    counters,
    quota_exceeded,
    quota_notice_due,
    quota_notice_if_crossed,
)
from core.epoch import access_epoch_database, access_epoch_key
from core.errors import LimitReached, ToolportError
from core.redis_channel import redis_command
from core.threads import run_sync

logger = logging.getLogger(__name__)


class EpochMoved(Exception):
    """The access epoch is not the one the caller's caches were filled under: nothing was written or counted."""

    def __init__(self, epoch: str) -> None:
        super().__init__(f"the access epoch is now {epoch}")
        self.epoch = epoch


class TouchedKeyGone(Exception):
    """The key `Touch` names no longer exists (the session was closed, evicted or expired): nothing was written."""


class RateLimited(LimitReached):
    """The key sent more requests this minute than its plan allows; `retry_after` is the seconds to the next minute."""

    code = "rate_limited"


class AdmissionUnavailable(ToolportError):
    """The counters' store (Redis, or PostgreSQL without it) cannot be reached: nothing can be admitted unmetered."""

    code = "temporarily_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Toolport cannot check this request against the plan's limits right now (its usage counters are "
            "unreachable), so it was not run. Try again in a few seconds."
        )


@dataclass(frozen=True)
class Touch:
    """Keep an MCP session alive in the same round trip (Redis only; ignored by the PostgreSQL twin)."""

    key: str  # EXPIRE key ttl
    ttl: int
    index: str  # ZADD index <now as float seconds> member; EXPIRE index ttl (the key's sessions by last use)
    member: str


def _rate_key(key_id: UUID | str, minute: int) -> str:
    """The Redis counter of a key's requests in one clock minute (unix time // 60)."""
    return f"{settings.MCP_REDIS_PREFIX}:rpm:{key_id}:{minute}"


def _rate_limited(limit: int, now: float) -> RateLimited:
    error = RateLimited(
        f"This API key made more than {limit} requests this minute, the most its plan allows. "
        "Wait for the next minute, or upgrade the plan for a higher rate."
    )
    error.retry_after = max(1, int(60 - now % 60))
    return error


# --- the public surface -------------------------------------------------------------------------------------------


async def access_epoch_read() -> str:
    """The current access epoch ("0" when never bumped): Redis when REDIS_URL is set, else the PostgreSQL twin."""
    if settings.REDIS_URL:
        value = await _redis_guarded("GET", access_epoch_key())
        return _text(value) if value is not None else "0"
    return await run_sync(_database_guarded)(access_epoch_database)


async def usage_admit(
    *,
    policy: QuotaPolicy,
    key_id: UUID | str | None,
    epoch: str,
    charges: Sequence[tuple[str, int]] = (),
    touch: Touch | None = None,
) -> None:
    """Admit one MCP message in one round trip: epoch unchanged, the key's requests-per-minute
    (policy.requests_per_minute_per_key; None = unlimited), every charge fits its quota (policy.limit(metric); None =
    unlimited), then count the rate, increment the counters, append the usage-stream entries (Redis) / ledger rows
    (PostgreSQL), touch the session. Raises EpochMoved (nothing written), RateLimited (the rate was counted),
    QuotaExceeded via billing.quotas.quota_exceeded (nothing charged), TouchedKeyGone (Redis: the touched key does
    not exist; nothing written), AdmissionUnavailable.

    The session is touched once the rate admits the message, also when a quota then refuses it: a client whose quota
    is used up is still using its session (tools/list, resources, other methods)."""
    _charges_check(charges)
    now = time.time()
    rate_limit = policy.requests_per_minute_per_key if key_id is not None else None
    if settings.REDIS_URL:
        reply = await _redis_admit(policy, key_id, rate_limit, epoch, charges, touch, now)
    else:
        arguments = _database_arguments(policy, key_id, rate_limit, epoch, charges, now)
        reply = await run_sync(_database_guarded)(_database_admit, arguments)
    used_after = _verdict(reply, policy, charges, rate_limit, now)
    await _notices(policy, charges, used_after)


def _charges_check(charges: Sequence[tuple[str, int]]) -> None:
    """A wrong charge is a bug in the caller, not a refusal: say so loudly."""
    metrics = [metric for metric, _amount in charges]
    if len(set(metrics)) != len(metrics) or any(metric not in COUNTED_METRICS for metric in metrics):
        raise ValueError(f"charges must name each of {COUNTED_METRICS} at most once, not {metrics}")
    if any(amount <= 0 for _metric, amount in charges):
        raise ValueError("a charge's amount must be positive")


def _verdict(
    reply: list[Any], policy: QuotaPolicy, charges: Sequence[tuple[str, int]], rate_limit: int | None, now: float
) -> list[int]:
    """Each charge's use after admission, from either backend's answer; or the refusal it stands for.

    Both answer {1, used after each charge...}, {-2, current epoch}, {-3, requests this minute}, {-4} (Redis: the
    touched key is gone) or
    {0, the refused charge's position (1-based), its use}."""
    status = int(reply[0])
    if status == 1:
        return [int(used) for used in reply[1:]]
    if status == -2:
        raise EpochMoved(_text(reply[1]))
    if status == -3:
        raise _rate_limited(rate_limit or 0, now)
    if status == -4:
        raise TouchedKeyGone()
    metric = charges[int(reply[1]) - 1][0]
    raise quota_exceeded(policy, metric, int(reply[2]))


async def _notices(policy: QuotaPolicy, charges: Sequence[tuple[str, int]], used_after: list[int]) -> None:
    """Queue the owners' email when a charge crossed a threshold: checked here, sent from a thread (it is rare)."""
    for (metric, amount), after in zip(charges, used_after, strict=True):
        if quota_notice_due(policy, metric, before=after - amount, after=after):
            await run_sync(quota_notice_if_crossed)(policy, metric, before=after - amount, after=after)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- Redis --------------------------------------------------------------------------------------------------------

# KEYS: epoch, the key's rate counter this minute (the epoch again when there is none), the quota counter of each
# charge, the usage stream, then the session and its key's session index when touching.
# ARGV: expected epoch, rate limit (-1: none), workspace, period start, touch TTL (0: no touch), touch score, touch
# member, then (metric, amount, limit (-1: none)) per charge.
# Returns what `_verdict` reads, or {-1, i}: charge i's counter is not in Redis (seed it and call again). Nothing is
# written before the -2 and -1 answers; the rate is counted before the quota is checked, as on every MCP message. A
# minute's rate counter expires after 120 s, so a request late in its minute still finds it.
_SCRIPT = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return {-2, epoch} end
local charges = (#ARGV - 7) / 3
if tonumber(ARGV[5]) > 0 and redis.call('EXISTS', KEYS[4 + charges]) == 0 then return {-4} end
local used = {}
for i = 1, charges do
  local value = redis.call('GET', KEYS[2 + i])
  if not value then return {-1, i} end
  used[i] = tonumber(value)
end
local rate_limit = tonumber(ARGV[2])
if rate_limit >= 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], 120) end
  if count > rate_limit then return {-3, count} end
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[4 + charges], ttl)
  redis.call('ZADD', KEYS[5 + charges], ARGV[6], ARGV[7])
  redis.call('EXPIRE', KEYS[5 + charges], ttl)
end
for i = 1, charges do
  local limit = tonumber(ARGV[7 + 3 * i])
  if limit >= 0 and used[i] + tonumber(ARGV[6 + 3 * i]) > limit then return {0, i, used[i]} end
end
local answer = {1}
for i = 1, charges do
  local amount = tonumber(ARGV[6 + 3 * i])
  answer[i + 1] = redis.call('INCRBY', KEYS[2 + i], amount)
  redis.call('XADD', KEYS[3 + charges], '*', 'w', ARGV[3], 'm', ARGV[5 + 3 * i], 'p', ARGV[4], 'a', amount)
end
return answer
"""
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


async def _redis_admit(
    policy: QuotaPolicy,
    key_id: UUID | str | None,
    rate_limit: int | None,
    epoch: str,
    charges: Sequence[tuple[str, int]],
    touch: Touch | None,
    now: float,
) -> list[Any]:
    backend = counters()
    assert isinstance(backend, RedisCounters)  # REDIS_URL is set
    keys, arguments = _script_inputs(backend, policy, key_id, rate_limit, epoch, charges, touch, now)
    for _attempt in range(2):
        reply = await _redis_guarded("EVALSHA", _SHA, len(keys), *keys, *arguments)
        if int(reply[0]) != -1:
            return list(reply)
        await run_sync(_seed)(policy, charges)
    logger.warning("billing.admission_counter_not_seeded", extra={"workspace": str(policy.workspace_id)})
    raise AdmissionUnavailable


def _script_inputs(
    backend: RedisCounters,
    policy: QuotaPolicy,
    key_id: UUID | str | None,
    rate_limit: int | None,
    epoch: str,
    charges: Sequence[tuple[str, int]],
    touch: Touch | None,
    now: float,
) -> tuple[list[str], list[Any]]:
    epoch_key = access_epoch_key()
    rate_key = _rate_key(key_id, int(now // 60)) if key_id is not None and rate_limit is not None else epoch_key
    charge_keys, charge_arguments, workspace, period = _charge_inputs(backend, policy, charges)
    keys = [epoch_key, rate_key, *charge_keys]
    arguments: list[Any] = [epoch, -1 if rate_limit is None else rate_limit, workspace, period]
    if touch is None:
        arguments += [0, 0, ""]
    else:
        keys += [touch.key, touch.index]
        arguments += [touch.ttl, repr(now), touch.member]
    arguments += charge_arguments
    return keys, arguments


_charge_cache: dict[tuple[int, tuple[tuple[str, int], ...]], tuple[QuotaPolicy, list[str], list[Any], str, str]] = {}


def _charge_inputs(
    backend: RedisCounters, policy: QuotaPolicy, charges: Sequence[tuple[str, int]]
) -> tuple[list[str], list[Any], str, str]:
    """The script's keys and arguments for these charges under this policy: the same for every message until the
    policy is read again, so built once (a policy object is replaced, never changed, when it is read again)."""
    key = (id(policy), tuple(charges))
    cached = _charge_cache.get(key)
    if cached is None or cached[0] is not policy:
        if len(_charge_cache) > 4096:
            _charge_cache.clear()
        keys = [*(backend.key(policy, metric) for metric, _amount in charges), backend.stream]
        arguments: list[Any] = []
        for metric, amount in charges:
            limit = policy.limit(metric)
            arguments += [str(metric), amount, -1 if limit is None else limit]
        cached = _charge_cache[key] = (
            policy,
            keys,
            arguments,
            str(policy.workspace_id),
            policy.period_start.isoformat(),
        )
    return cached[1], cached[2], cached[3], cached[4]


def _seed(policy: QuotaPolicy, charges: Sequence[tuple[str, int]]) -> None:
    """Start missing counters from the durable ledger (first use this period, or Redis lost its data)."""
    backend = counters()
    try:
        for metric, _amount in charges:
            backend.used(policy, metric)
    except RedisError as error:
        logger.warning("billing.admission_redis_failed", exc_info=True)
        raise AdmissionUnavailable from error


async def _redis_guarded(*command: Any) -> Any:
    """A command on this loop's connection; the script loaded once when Redis does not know it (new or restarted).
    Any failure is AdmissionUnavailable: the reason goes to the log, never to the caller."""
    try:
        try:
            return await redis_command(*command)
        except NoScriptError:
            await redis_command("SCRIPT", "LOAD", _SCRIPT)
            return await redis_command(*command)
    except (RedisError, OSError, TimeoutError) as error:
        logger.warning("billing.admission_redis_failed", exc_info=True)
        raise AdmissionUnavailable from error


# --- PostgreSQL ---------------------------------------------------------------------------------------------------

# The function is the script's twin (billing/migrations/0004_admission.py). A function rather than one statement of
# data-modifying CTEs: Django's connections prepare nothing (for connection poolers), so such a statement would be
# parsed and planned on every call, which costs more than running it; a PL/pgSQL function's plans are kept by the
# session. Its answers are the script's, but -1: it creates a missing counter row itself.
_ADMIT_SQL = "SELECT billing_usage_admit(%s, %s, %s, %s, %s::uuid, %s, %s::text[], %s::bigint[], %s::bigint[])"


def _database_arguments(
    policy: QuotaPolicy,
    key_id: UUID | str | None,
    rate_limit: int | None,
    epoch: str,
    charges: Sequence[tuple[str, int]],
    now: float,
) -> list[Any]:
    counted = key_id is not None and rate_limit is not None
    return [
        epoch,
        str(key_id) if counted else None,
        int(now // 60),
        rate_limit if counted else None,
        policy.workspace_id,
        policy.period_start,
        [str(metric) for metric, _amount in charges],
        [amount for _metric, amount in charges],
        [policy.limit(metric) for metric, _amount in charges],
    ]


def _database_admit(arguments: list[Any]) -> list[Any]:
    """One call, one transaction (autocommit), on this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute(_ADMIT_SQL, arguments)
        row = cursor.fetchone()
    assert row is not None
    return list(row[0])


def _database_guarded[R](function: Callable[..., R], *arguments: Any) -> R:
    """Run `function` on this thread's connection; a lost or refused connection is AdmissionUnavailable."""
    try:
        return function(*arguments)
    except (OperationalError, InterfaceError) as error:
        logger.warning("billing.admission_database_failed", exc_info=True)
        raise AdmissionUnavailable from error
