"""The command line of the ASGI server that serves Toolport: daphne (Channels' own) or uvicorn.

Both serve the same application (`config.asgi:application`), MCP transports included. uvicorn with uvloop and
httptools is the faster one (see bench/README.md); daphne stays supported. `ASGI_SERVER` picks it for `make run`
(runstack), the tests' server processes and the benchmark.
"""

from __future__ import annotations

import sys

from django.conf import settings

SERVERS = ("uvicorn", "daphne")
# uvicorn waits this long for open responses (SSE streams, WebSockets) on SIGTERM, then closes them.
GRACEFUL_SHUTDOWN_SECONDS = 5


def asgi_server_command(host: str, port: int, server: str | None = None) -> list[str]:
    server = server or settings.ASGI_SERVER
    application = settings.ASGI_APPLICATION.replace(".application", ":application")
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), application]
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            application,
            "--host",
            host,
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            "websockets-sansio",  # the websockets protocol without a task per connection: 10k idle sockets fit
            "--lifespan",
            "on",  # config.asgi writes the buffered usage events at shutdown (the MCP core starts on first use)
            "--timeout-graceful-shutdown",
            str(GRACEFUL_SHUTDOWN_SECONDS),
            "--no-access-log",
            "--no-server-header",
        ]
    raise ValueError(f"ASGI_SERVER must be one of {', '.join(SERVERS)}, not {server!r}")
