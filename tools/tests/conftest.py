import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class UpstreamProcess:
    """The official SDK's MCP server (tools/tests/upstream_server.py) running in its own process."""

    port: int
    transport: str = "streamable-http"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/" + ("sse" if self.transport == "sse" else "mcp")

    def start(self) -> "UpstreamProcess":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.tests.upstream_server",
                "--port",
                str(self.port),
                "--transport",
                self.transport,
            ],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/seen", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the upstream MCP fixture server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def seen(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.port}/seen", timeout=5).json()


@pytest.fixture(scope="module")
def upstream_process():
    server = UpstreamProcess(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_process, settings):
    """The running fixture server, allow-listed past the SSRF guard for this test."""
    settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{upstream_process.port}"]
    return upstream_process
