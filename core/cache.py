"""One Redis connection pool per process for Django's cache.

Django's cache handler gives every async context its own cache object, and its Redis client builds a connection
pool per object: under ASGI that meant a new Redis connection (and redis-py's driver-version lookup) for nearly
every request of the MCP endpoint. This pool class hands out the process's pool for a URL instead; redis-py's pools
are thread-safe and reset themselves in a forked child.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _pools: dict[tuple[int, str], redis.ConnectionPool] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        key = (os.getpid(), url)
        with cls._shared_lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = redis.ConnectionPool.from_url(url, **kwargs)
        return pool
