"""The access epoch: one Redis counter that every change to who may call what moves forward.

Hot paths (the MCP endpoint's fast path) keep API keys, plans and visible tools in process memory. They stay
correct across replicas because every request they serve is admitted by a Redis script that first compares the
epoch the process's caches were filled under with the current one; on a mismatch the process drops its caches and
reads again. So revoking a key, changing a plan or disabling a tool takes effect on the next request everywhere.

Bumped after the commit of: API key revocation and rotation, workspace deletion, plan changes, and every registry
change (tools, prompts, resources). Without Redis (`REDIS_URL` unset) there is nothing to share and the fast path
is off.
"""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def access_epoch_key() -> str:
    return f"{settings.MCP_REDIS_PREFIX}:access-epoch"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def access_epoch_bump() -> None:
    """Move the epoch now (call after the change is committed; see `access_epoch_bump_on_commit`)."""
    if not settings.REDIS_URL:
        return
    try:
        _client(settings.REDIS_URL).incr(access_epoch_key())
    except redis.RedisError:
        # The change itself is committed; caches also expire on their own (MCP_FAST_PATH_CACHE_SECONDS).
        logger.exception("core.access_epoch_bump_failed")


def access_epoch_bump_on_commit() -> None:
    transaction.on_commit(access_epoch_bump)
