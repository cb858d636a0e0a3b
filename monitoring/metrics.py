"""Prometheus metrics: what each process counts, and the exposition `/metrics` serves.

Every process writes its samples to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, set up
by the settings: core.prometheus), so one scrape of the web server sums the web process and the Celery workers of the
same host. Labels stay bounded: no workspace or key ever becomes a label; a tool keeps its name only when it is a
built-in or a staff-registered global tool (a fixed catalogue), every workspace's own tool (and any unknown name a
client sends) counts as "custom".

The Celery queue lengths are measured when scraped (one query to the broker), not counted.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from celery.signals import worker_process_shutdown
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.prometheus import ENVIRONMENT_VARIABLE, live_gauges_of_gone_processes_remove
from monitoring.calls import CallStatus, ToolCall, Transport

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from monitoring.health import CheckResult

logger = logging.getLogger(__name__)

CUSTOM_TOOL = "custom"
OTHER = "other"
TRANSPORTS = frozenset(
    (Transport.STREAMABLE_HTTP, Transport.SSE, Transport.WEBSOCKET, Transport.REST, Transport.CONSOLE)
)
# Tool calls take from a millisecond (a built-in on the fast path) to the longest timeout (an upstream tool).
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)

TOOL_CALLS = Counter(
    "mcp_tool_calls",
    "Tool calls answered (MCP, REST, console), by tool (built-in and global tools by name, workspaces' own tools as "
    '"custom") and status (ok, tool_error, denied, quota, error).',
    ["tool", "status"],
)
TOOL_CALL_DURATION = Histogram(
    "mcp_tool_call_duration_seconds",
    "Time to answer a tool call, admission included, by transport.",
    ["transport"],
    buckets=CALL_BUCKETS,
)
ACTIVE_SESSIONS = Gauge(
    "mcp_active_sessions",
    "MCP sessions holding an open connection (a /sse stream, a WebSocket, a Streamable HTTP GET stream).",
    ["transport"],
    multiprocess_mode="livesum",
)
RAG_SEARCH_DURATION = Histogram(
    "rag_search_duration_seconds",
    "Time of a knowledge search (query embedding, dense and full-text retrieval, fusion).",
    buckets=SEARCH_BUCKETS,
)
RAG_INGEST_CHUNKS = Counter("rag_ingest_chunks", "Chunks written by document ingestion.")
QUOTA_DENIALS = Counter("quota_denials", "Requests refused because a monthly quota is used up, by metric.", ["metric"])
READINESS = Gauge(
    "readiness_check_up",
    "1 if the check passed at the last /readyz, 0 if it failed.",
    ["check"],
    multiprocess_mode="mostrecent",
)


# --- tool calls ------------------------------------------------------------------------------------------------------

REFRESH_SECONDS = 60.0


class _GlobalToolNames:
    """The names that may become a `tool` label. Built-ins are known in memory; the staff's global tools are read
    from the database by a background thread at most once a minute, since a listener must never do I/O."""

    def __init__(self) -> None:
        self.builtin: Callable[[str], bool] = lambda name: False
        self.load: Callable[[], Iterable[str]] | None = None
        self.names: frozenset[str] = frozenset()
        self.loaded_at = -REFRESH_SECONDS
        self.lock = threading.Lock()
        self.loading = False

    def known(self, name: str) -> bool:
        if self.builtin(name) or name in self.names:
            return True
        if self.load is not None and time.monotonic() - self.loaded_at >= REFRESH_SECONDS:
            self._refresh_soon()
        return False

    def _refresh_soon(self) -> None:
        with self.lock:
            if self.loading:
                return
            self.loading = True
        threading.Thread(target=self._refresh, name="metrics-tool-names", daemon=True).start()

    def _refresh(self) -> None:
        from django.db import connections

        try:
            assert self.load is not None
            self.names = frozenset(self.load())
        except Exception:
            logger.warning("Could not read the global tool names for metrics labels.", exc_info=True)
        finally:
            self.loaded_at = time.monotonic()
            self.loading = False
            connections.close_all()  # this thread's own connection


_global_tools = _GlobalToolNames()


def global_tool_names_register(*, builtin: Callable[[str], bool], load: Callable[[], Iterable[str]]) -> None:
    """The tools app says which names are its built-ins and how to read the global tools' names."""
    _global_tools.builtin = builtin
    _global_tools.load = load


def tool_label(name: str) -> str:
    return name if _global_tools.known(name) else CUSTOM_TOOL


def tool_call_count(call: ToolCall) -> None:
    """The tool-call listener (monitoring.calls): two in-memory increments, no I/O."""
    status = call.status if call.status in CallStatus.ALL else CallStatus.ERROR
    TOOL_CALLS.labels(tool_label(call.tool), status).inc()
    transport = call.transport if call.transport in TRANSPORTS else OTHER
    TOOL_CALL_DURATION.labels(transport).observe(call.latency_ms / 1000)


# --- sessions, quotas, readiness -------------------------------------------------------------------------------------


@contextmanager
def session_open(transport: str) -> Iterator[None]:
    """Count an MCP session as active while its connection is open."""
    gauge = ACTIVE_SESSIONS.labels(transport)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def quota_denial_count(metric: str) -> None:
    """Registered with core.observe: billing reports each refusal there (it may not import monitoring)."""
    QUOTA_DENIALS.labels(metric).inc()


def readiness_record(results: Iterable[CheckResult]) -> None:
    for result in results:
        READINESS.labels(result.name).set(1 if result.ok else 0)


# --- Celery queues, measured when scraped ----------------------------------------------------------------------------

BROKER_TIMEOUT_SECONDS = 2.0


def celery_queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue the workers consume, asked of the broker (Redis: LLEN of its lists)."""
    from kombu.exceptions import ChannelError

    from config.celery import app

    names = {app.conf.task_default_queue, *(queue.name for queue in app.conf.task_queues or ())}
    lengths: dict[str, int] = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
        channel = connection.default_channel
        for name in sorted(names):
            try:
                _queue, count, _consumers = channel.queue_declare(queue=name, passive=True)
            except ChannelError:  # no message was ever sent to it, or it is empty (Redis keeps no empty list)
                count = 0
            lengths[name] = int(count)
    return lengths


class CeleryQueueCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        lengths = GaugeMetricFamily(
            "celery_queue_length", "Messages waiting in a Celery queue, measured at scrape time.", labels=["queue"]
        )
        try:
            for queue, count in celery_queue_lengths().items():
                lengths.add_metric([queue], count)
            reachable = 1
        except Exception:
            logger.warning("Could not measure the Celery queues.", exc_info=True)
            reachable = 0
        yield lengths
        yield GaugeMetricFamily(
            "celery_broker_up", "1 if the broker answered the scrape's queue-length query.", value=reachable
        )


# --- exposition ------------------------------------------------------------------------------------------------------


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(ENVIRONMENT_VARIABLE))


def metrics_exposition() -> tuple[bytes, str]:
    """The text exposition of every process's samples on this host, and its content type."""
    if multiprocess_enabled():
        live_gauges_of_gone_processes_remove(Path(os.environ[ENVIRONMENT_VARIABLE]))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(CeleryQueueCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()  # one process only (the variable was unset when prometheus_client loaded)
    registry.register(_Forward(REGISTRY))
    registry.register(CeleryQueueCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


# --- process exit: a dead process's live gauges (active sessions) must stop counting ------------------------------


def _mark_dead(pid: int) -> None:
    if multiprocess_enabled():
        try:
            multiprocess.mark_process_dead(pid)
        except OSError:
            logger.warning("Could not remove the live gauges of process %s.", pid, exc_info=True)


atexit.register(lambda: _mark_dead(os.getpid()))


@worker_process_shutdown.connect
def _worker_child_exit(pid: int | None = None, **kwargs: object) -> None:
    """A Celery pool child ends with os._exit, skipping atexit."""
    _mark_dead(pid or os.getpid())
