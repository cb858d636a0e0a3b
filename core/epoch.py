"""The access epoch: one counter that every change to who may call what moves forward.

Hot paths (the MCP endpoint) keep API keys, plans and visible tools in process memory. They stay correct across
replicas because every message they serve is admitted (`billing.admission.usage_admit`) in a round trip that first
compares the epoch the process's caches were filled under with the current one; on a mismatch the process drops its
caches and reads again. So revoking a key, changing a plan or disabling a tool takes effect on the next message
everywhere.

The counter lives where admission counts: a Redis key when `REDIS_URL` is set, else the PostgreSQL sequence
`core_access_epoch` (migration 0002). Both read "0" until the first bump.

Bumped after the commit of: API key revocation and rotation, workspace deletion, plan changes, and every registry
change (tools, prompts, resources).
"""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

ACCESS_EPOCH_SEQUENCE = "core_access_epoch"
# A sequence reports its start value until nextval first runs (is_called false): that is the epoch "0".
_SEQUENCE_READ = f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {ACCESS_EPOCH_SEQUENCE}"  # noqa: S608


def access_epoch_key() -> str:
    return f"{settings.MCP_REDIS_PREFIX}:access-epoch"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def access_epoch_bump() -> None:
    """Move the epoch now (call after the change is committed; see `access_epoch_bump_on_commit`)."""
    try:
        if settings.REDIS_URL:
            _client(settings.REDIS_URL).incr(access_epoch_key())
            return
        # A savepoint when called inside a transaction: a failure here must not break the caller's transaction.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [ACCESS_EPOCH_SEQUENCE])
    except (redis.RedisError, DatabaseError):
        # The change itself is committed; the MCP endpoint's caches also expire on their own (its cache time).
        logger.exception("core.access_epoch_bump_failed")


def access_epoch_bump_on_commit() -> None:
    transaction.on_commit(access_epoch_bump)


def access_epoch_database() -> str:
    """The epoch in PostgreSQL (no Redis), from this thread's connection; async callers use
    `billing.admission.access_epoch_read`."""
    with connection.cursor() as cursor:
        cursor.execute(_SEQUENCE_READ)
        row = cursor.fetchone()
    return str(row[0]) if row else "0"
