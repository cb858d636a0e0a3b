"""Running sync code (the ORM, HTTP clients) from async code.

By default `run_sync` is asgiref's thread-sensitive `sync_to_async`: one thread, the same one as the outer sync
caller, so code driven by `async_to_sync` (console views, the REST API, tests) sees its own transaction. The MCP
endpoint serves many clients at once and has no outer sync caller: it turns on `parallel_sync` for its requests, and
their sync work runs in the shared thread pool instead, each thread keeping its own persistent database connection
(CONN_MAX_AGE) instead of queueing behind a single thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async

_parallel: contextvars.ContextVar[bool] = contextvars.ContextVar("parallel_sync", default=False)


def run_sync[**P, R](function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    return sync_to_async(function, thread_sensitive=not _parallel.get())


def parallel_sync() -> contextvars.Token[bool]:
    return _parallel.set(True)


def parallel_sync_reset(token: contextvars.Token[Any]) -> None:
    _parallel.reset(token)
