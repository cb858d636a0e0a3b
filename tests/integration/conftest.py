"""Helpers for suites that start the product as real processes, the way `make run` does."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.db import connection

from core.asgi_server import asgi_server_command
from core.database import database_url
from core.embedded.paths import BASE_DIR


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def private_var_dir() -> Iterator[Path]:
    """A fresh var/ for one test (searchable by 'nobody', which runs PostgreSQL when the suite runs as root)."""
    root = Path(tempfile.mkdtemp(prefix="tp-var-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def product_environment(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh local install: no DATABASE_URL/REDIS_URL, its own var/ folder."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        TOOLPORT_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return environment


class ProductProcess:
    """`manage.py runstack` (or another command) as a child process, its output collected line by line."""

    def __init__(self, arguments: list[str], environment: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", *arguments],
            cwd=BASE_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.output.append(line)

    def read(self) -> str:
        return "".join(self.output)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.read()
            if text in output:
                return output
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear within {timeout}s. Output:\n{self.read()}")

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class AsgiServer:
    port: int
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def stop(self, timeout: float = 15) -> float:
        """SIGTERM; the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started


def asgi_server_start(asgi_server: str | None = None, *, output: Path | None = None, **environment: str) -> AsgiServer:
    """The product's ASGI server (settings.ASGI_SERVER unless `asgi_server` names one) on a free port; its stdout and
    stderr go to `output` when given (stdout is dropped and stderr inherited otherwise)."""
    port = free_port()
    log = output.open("w") if output is not None else None
    process = subprocess.Popen(
        asgi_server_command("127.0.0.1", port, asgi_server),
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(connection),
            **environment,
        },
        stdout=log or subprocess.DEVNULL,
        stderr=log,
    )
    server = AsgiServer(port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{server.base}/healthz", timeout=1)
            return server
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("the ASGI server exited while starting") from None
            time.sleep(0.1)
    raise RuntimeError("the ASGI server did not start")
