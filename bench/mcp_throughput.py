"""Benchmark: authenticated, quota-checked, metered `tools/call` through /mcp, beside the MCP SDK's own server.

Run: make bench   (or: .venv/bin/python bench/mcp_throughput.py [--seconds 10] [--connections 16] [--idle 1000,10000])

In one run on this machine it starts the embedded PostgreSQL and a private Redis, then:
1. Toolport under daphne (one process, test settings: Redis cache, channel layer and quota counters), a workspace on
   the Enterprise plan, an API key;
2. the reference: the SDK's `MCPServer` with one trivial tool, stateless JSON responses, on uvicorn (one process);
3. wrk (closed loop, `--connections`) against each: the reference, Toolport with a handshake-era session, Toolport
   with stateless 2026-07-28 requests; each calls a trivial echo tool. It prints requests per second, p50/p95/p99
   and the ratio to the reference;
4. an open-loop run at half of Toolport's measured maximum (latency counted from each request's scheduled time);
5. idle sessions: it opens legacy SSE streams and then WebSocket sessions to one Toolport process and prints the
   process's RSS at each count in `--idle`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
MODERN_CALL = (
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},'
    '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},'
    '"io.modelcontextprotocol/clientCapabilities":{}}}}'
)
LUA = """wrk.method = "POST"
wrk.body = [[{body}]]
{headers}
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES %.3f %.3f %.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--servers", default="uvicorn,daphne", help="the ASGI servers to run Toolport on")
    parser.add_argument("--only", default="", help="run only the Toolport runs whose label contains this text")
    parser.add_argument("--idle", default="1000,10000", help="idle session counts to measure RSS at ('' to skip)")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `make bench` installs it (Debian package 'wrk').")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10k streams need the file descriptors

    from core.embedded import redis as embedded_redis
    from core.embedded.postgres import EmbeddedPostgres

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    database, redis_server = EmbeddedPostgres(), embedded_redis.EmbeddedRedis()
    started = [server for server in (database, redis_server) if server.start()]
    try:
        run(arguments)
    finally:
        for server in reversed(started):
            server.stop()


def run(arguments: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from accounts.models import Membership, Role, User, Workspace
    from accounts.tests.factories import issue_key
    from billing.models import BillingAccount, Plan, Tier
    from billing.plans import plans_seed
    from core.database import database_url
    from tools.services import builtin_tools_sync

    plans_seed()
    builtin_tools_sync()
    Plan.objects.filter(tier=Tier.ENTERPRISE).update(requests_per_minute_per_key=None, max_concurrent_sessions=None)
    user = User.objects.create_user(email=f"bench-{time.time_ns()}@example.com", password=None)
    workspace = Workspace.objects.create(name="bench")
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.ENTERPRISE))
    key = issue_key(Membership.objects.get(workspace=workspace)).secret

    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}")
    environment = {**os.environ, "DATABASE_URL": database_url(connection), "REDIS_URL": settings.REDIS_URL}
    from core.asgi_server import SERVERS, asgi_server_command

    ports = {server: _free_port() for server in arguments.servers.split(",") if server in SERVERS}
    servers = {
        server: subprocess.Popen(
            asgi_server_command("127.0.0.1", port, server),
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for server, port in ports.items()
    }
    reference_port = _free_port()
    reference = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "reference_server.py"), "--port", str(reference_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        reference_url = f"http://127.0.0.1:{reference_port}/mcp"
        _wait_port(reference_port)
        base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        runs = {
            "reference (SDK MCPServer, stateless JSON, uvicorn)": (
                reference_url,
                CALL,
                {**base, "MCP-Protocol-Version": "2025-06-18"},
            )
        }
        for server, port in ports.items():
            url = f"http://127.0.0.1:{port}/mcp"
            _wait(f"http://127.0.0.1:{port}/healthz")
            session = _initialize(url, key)
            runs[f"Toolport, stateless (2026-07-28), {server}"] = (
                url,
                MODERN_CALL,
                {
                    **base,
                    "MCP-Protocol-Version": "2026-07-28",
                    "Mcp-Method": "tools/call",
                    "Mcp-Name": "echo",
                    "Authorization": f"Bearer {key}",
                },
            )
            runs[f"Toolport, session (2025-06-18), {server}"] = (
                url,
                CALL,
                {
                    **base,
                    "MCP-Protocol-Version": "2025-06-18",
                    "Authorization": f"Bearer {key}",
                    "Mcp-Session-Id": session,
                },
            )
        runs = {label: run for index, (label, run) in enumerate(runs.items()) if index == 0 or arguments.only in label}
        _check(runs)
        print(f"\nclosed loop: wrk -t1 -c{arguments.connections} -d{arguments.seconds}s, tools/call of an echo tool")
        results = {}
        for label, (url, body, headers) in runs.items():
            _wrk(url, body, headers, arguments.connections, 2)  # warm up
            results[label] = _wrk(url, body, headers, arguments.connections, arguments.seconds)
            rps, p50, p95, p99, errors = results[label]
            figures = f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms  errors {errors}"
            print(f"  {label:<52} {rps:8.0f} rps   {figures}")
        reference_rps = next(iter(results.values()))[0]
        for label, (rps, *_rest) in list(results.items())[1:]:
            print(f"  {label:<52} {rps / reference_rps:.2f}x the reference")

        print(
            f"\nopen loop at half of each Toolport run's max ({arguments.seconds} s; latency from the scheduled start):"
        )
        for label, (url, body, headers) in list(runs.items())[1:]:
            rate = max(1, int(results[label][0] / 2))
            p50, p95, p99, errors = uvloop.run(_open_loop(url, body, headers, rate, arguments.seconds))
            figures = f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms  errors {errors}"
            print(f"  {label:<52} {rate:8d} rps   {figures}")

        counts = [int(part) for part in arguments.idle.split(",") if part.strip()]
        for process in servers.values():
            process.terminate()
            process.wait(30)
        for server in ports if counts else ():
            print(f"\nidle sessions held by one fresh Toolport process ({server}; RSS of the server process):")
            for transport in ("sse", "websocket"):
                port = _free_port()
                process = subprocess.Popen(
                    asgi_server_command("127.0.0.1", port, server),
                    cwd=ROOT,
                    env=environment,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    _wait(f"http://127.0.0.1:{port}/healthz")
                    asyncio.run(_idle(transport, port, key, counts, process.pid))
                finally:
                    process.terminate()
                    process.wait(30)
                time.sleep(5)  # let Redis forget the closed sessions' channel groups
    finally:
        for process in (*servers.values(), reference):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _wait_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def _initialize(url: str, key: str) -> str:
    response = httpx.post(
        url,
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        },
    )
    response.raise_for_status()
    return response.headers["Mcp-Session-Id"]


def _check(runs: dict[str, tuple[str, str, dict[str, str]]]) -> None:
    """One call each, so a misconfigured run fails loudly instead of measuring error pages."""
    for label, (url, body, headers) in runs.items():
        response = httpx.post(url, content=body, headers=headers, timeout=10)
        if response.status_code != 200 or '"hi"' not in response.text or '"isError":true' in response.text:
            raise RuntimeError(f"{label}: {response.status_code} {response.text[:300]}")


def _wrk(url: str, body: str, headers: dict[str, str], connections: int, seconds: int) -> tuple[float, ...]:
    lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=body, headers=lines))
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50, p95, p99 = (float(value) for value in re.search(r"PERCENTILES (\S+) (\S+) (\S+)", output).groups())  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, p50, p95, p99, int(errors_match[1]) if errors_match else 0


async def _open_loop(url: str, body: str, headers: dict[str, str], rate: int, seconds: int) -> tuple[float, ...]:
    """Requests at a fixed rate; latency from each request's scheduled start, so a request that waits for a free
    connection counts its wait (no coordinated omission). 64 keep-alive connections, each a loop that takes the
    next scheduled slot; raw HTTP/1.1 on asyncio streams, so the client stays far below the rates it offers."""
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body.encode())}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body.encode()
    latencies: list[float] = []
    errors = 0
    total = rate * seconds
    slots = iter(range(total))
    start = time.perf_counter() + 0.5

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        for number in slots:
            scheduled = start + number / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length is not None:
                await reader.readexactly(int(length[1]))
            else:  # chunked
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            latencies.append((time.perf_counter() - scheduled) * 1000)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    await asyncio.gather(*(connection() for _ in range(64)))
    latencies.sort()
    return (
        statistics.median(latencies),
        latencies[int(len(latencies) * 0.95)],
        latencies[int(len(latencies) * 0.99)],
        errors,
    )


async def _idle(transport: str, port: int, key: str, counts: list[int], pid: int) -> None:
    import psutil
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    process = psutil.Process(pid)
    baseline = process.memory_info().rss
    held: list[object] = []
    closers: list[Any] = []
    headers = {"Authorization": f"Bearer {key}"}
    opened = 0
    semaphore = asyncio.Semaphore(64)

    async def open_sse() -> None:
        async with semaphore:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"event: endpoint")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(head[:200].decode(errors="replace"))
            held.append((reader, writer))
            closers.append(writer.close)

    async def open_websocket() -> None:
        async with semaphore:
            socket = await connect(
                f"ws://127.0.0.1:{port}/mcp/ws", subprotocols=[Subprotocol("mcp")], additional_headers=headers
            )
            held.append(socket)
            closers.append(lambda socket=socket: asyncio.ensure_future(socket.close()))

    started = time.perf_counter()
    for count in counts:
        try:
            await asyncio.gather(
                *(open_sse() if transport == "sse" else open_websocket() for _ in range(count - opened))
            )
        except Exception as error:  # report how far it got
            print(f"  {transport:<9} stopped after {len(held):,} sessions: {type(error).__name__}: {error}")
            break
        opened = count
        await asyncio.sleep(2)
        rss = process.memory_info().rss
        per = (rss - baseline) / max(opened, 1) / 1024
        print(
            f"  {transport:<9} {opened:>6,} open: RSS {rss / 2**20:7.1f} MiB  (+{per:.1f} KiB per session; "
            f"{time.perf_counter() - started:.0f} s to open)"
        )
    for close in closers:
        close()
    await asyncio.sleep(3)


if __name__ == "__main__":
    main()
