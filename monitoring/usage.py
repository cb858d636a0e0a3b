"""The usage ledger: every tool call becomes a `UsageEvent`, written in batches off the hot path, then rolled up per
hour and day.

- **Recording.** `record` (a `monitoring.calls` listener) appends the call to this process's buffer: a lock and a
  list append, nothing else. A background thread writes the buffer every `USAGE_EVENTS_FLUSH_SECONDS` (sooner when
  `USAGE_EVENTS_BATCH` calls are waiting) with one COPY, and marks the (workspace, hour) pairs it touched as dirty in
  the same transaction. A process stopped normally writes what is left at exit. If the database is down, the
  buffer keeps up to `USAGE_EVENTS_BUFFER_MAX` calls and retries; beyond that the oldest are dropped (and logged):
  the ledger is for people, billing counts calls in its own durable ledger.
- **Rollups.** `usage_rollup` (Celery beat) takes the dirty hours and recomputes each from the raw events (by tool),
  then the UTC days that hold them (by tool and status, and by API key and status). Recomputing whole buckets keeps
  them right whatever the order in which events arrive. Charts in the user's time zone group the hourly rollups by
  local day; tables over whole days read the daily ones.
- **Retention.** `usage_events_prune` deletes raw events older than `USAGE_EVENT_RETENTION_DAYS`; rollups stay.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from monitoring.calls import ToolCall
from monitoring.models import LATENCY_BOUNDS_MS, UsageEvent

logger = logging.getLogger(__name__)

_COLUMNS = (
    "at",
    "workspace_id",
    "api_key_id",
    "metric",
    "units",
    "ai_operations",
    "tool",
    "status",
    "latency_ms",
    "error_code",
    "transport",
)


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[ToolCall] = []
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0

    def add(self, call: ToolCall) -> None:
        with self.lock:
            self.calls.append(call)
            waiting = len(self.calls)
            if self.pid != os.getpid():  # first call in this process (or after a fork): start its writer
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="usage-events", daemon=True)
                self.thread.start()
        if waiting >= settings.USAGE_EVENTS_BATCH:
            self.wake.set()

    def take(self) -> list[ToolCall]:
        with self.lock:
            calls, self.calls = self.calls, []
        return calls

    def give_back(self, calls: list[ToolCall]) -> None:
        """Calls a failed write could not store go back in front, within the buffer's cap."""
        with self.lock:
            self.calls = calls + self.calls
            excess = len(self.calls) - settings.USAGE_EVENTS_BUFFER_MAX
            if excess > 0:
                del self.calls[:excess]
                logger.error("The usage-event buffer is full: dropped the %s oldest events.", excess)

    def _run(self) -> None:
        while True:
            try:
                self.wake.wait(timeout=getattr(settings, "USAGE_EVENTS_FLUSH_SECONDS", 1.0))
                self.wake.clear()
                close_old_connections()
                usage_events_flush()
            except Exception:  # the database is away: the calls are back in the buffer; try again later
                logger.warning("Could not write usage events; will retry.", exc_info=True)


_buffer = _Buffer()


def record(call: ToolCall) -> None:
    """Buffer one call (the `monitoring.calls` listener)."""
    _buffer.add(call)


def pending() -> int:
    return len(_buffer.calls)


def usage_events_discard() -> int:
    """Drop the buffered calls (a test process at its end: its database may already be gone)."""
    return len(_buffer.take())


def usage_events_flush() -> int:
    """Write the buffered calls now; returns how many were written. Raises (with the calls back in the buffer) if the
    database refuses them."""
    calls = _buffer.take()
    if not calls:
        return 0
    try:
        usage_events_write(calls)
    except BaseException:
        _buffer.give_back(calls)
        raise
    return len(calls)


def usage_events_flush_at_exit() -> None:
    """Write what is left (at exit, and at the ASGI server's lifespan shutdown: uvicorn ends by re-raising the
    signal it caught, so `atexit` does not run there)."""
    try:
        written = usage_events_flush()
        if written:
            logger.info("Wrote %s usage events at exit.", written)
    except Exception:
        logger.exception("Could not write %s usage events at exit.", pending())


atexit.register(usage_events_flush_at_exit)


def usage_events_write(calls: Sequence[ToolCall]) -> None:
    """COPY the calls into the ledger and mark their (workspace, hour) pairs dirty, in one transaction."""
    hours = {(call.workspace_id, _hour(call.at)) for call in calls}
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.copy(f"COPY monitoring_usageevent ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for call in calls:
                copy.write_row(
                    (
                        datetime.fromtimestamp(call.at, UTC),
                        call.workspace_id,
                        call.api_key_id,
                        "api_calls",
                        1,
                        call.ai_operations,
                        call.tool[:128],
                        call.status,
                        round(call.latency_ms, 3),
                        call.error_code,
                        call.transport[:20],
                    )
                )
        _mark_dirty(cursor, hours)


def _hour(at: float) -> datetime:
    return datetime.fromtimestamp(at - at % 3600, UTC)


def _mark_dirty(cursor: object, hours: Iterable[tuple[object, datetime]]) -> None:
    rows = sorted(hours, key=lambda pair: (str(pair[0]), pair[1]))  # a stable order: no deadlock between writers
    cursor.executemany(  # type: ignore[attr-defined]
        "INSERT INTO monitoring_usagedirtyhour (workspace_id, hour) VALUES (%s, %s) ON CONFLICT DO NOTHING", rows
    )


# --- rollups -------------------------------------------------------------------------------------------------------

ROLLUP_LOCK = 0x7573616765  # PostgreSQL advisory lock key of the rollup ("usage")
_ROLLUP = (
    "monitoring_usagerollup (granularity, bucket, workspace_id, tool, api_key_id, status, calls, failed, "
    "ai_operations, latency_ms_sum, latency_histogram)"
)


def _histogram_sql(column: str) -> str:
    """ARRAY[count below bound 1, count in [b1, b2), …, count of the rest] over `column`."""
    edges = [None, *LATENCY_BOUNDS_MS]
    parts = []
    for low, high in zip(edges, [*LATENCY_BOUNDS_MS, None], strict=True):
        conditions = [f"{column} >= {low}" if low is not None else "", f"{column} < {high}" if high is not None else ""]
        where = " AND ".join(condition for condition in conditions if condition)
        parts.append(f"count(*) FILTER (WHERE {where})")
    return f"ARRAY[{', '.join(parts)}]"


def _array_sum_sql(column: str) -> str:
    return f"ARRAY[{', '.join(f'sum({column}[{i}])' for i in range(1, len(LATENCY_BOUNDS_MS) + 2))}]::integer[]"


def usage_rollup(*, limit: int = 500, workspace_id: UUID | None = None) -> int:
    """Recompute the hourly rollups of up to `limit` dirty (workspace, hour) pairs (of one workspace, if given) and
    the UTC days that hold them; returns how many hours were recomputed. Runs wait for each other (an advisory lock),
    so a dashboard about to read never sees a rollup half done."""
    only = "WHERE workspace_id = %s" if workspace_id else ""
    with transaction.atomic(), connection.cursor() as cursor:
        # One rollup at a time: two runs over different hours of one day would both rewrite that day's rows.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        cursor.execute(
            "DELETE FROM monitoring_usagedirtyhour WHERE id IN (SELECT id FROM monitoring_usagedirtyhour "  # noqa: S608
            f"{only} ORDER BY hour LIMIT %s) RETURNING workspace_id, hour",
            [*([workspace_id] if workspace_id else []), limit],
        )
        dirty = cursor.fetchall()
        if not dirty:
            return 0
        workspaces = [row[0] for row in dirty]
        hours = [row[1] for row in dirty]
        pairs = "SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]) AS d(workspace_id, hour)"
        cursor.execute(
            f"DELETE FROM monitoring_usagerollup r USING ({pairs}) d "  # noqa: S608 - constant SQL
            "WHERE r.granularity = 'hour' AND r.workspace_id = d.workspace_id AND r.bucket = d.hour",
            [workspaces, hours],
        )
        cursor.execute(
            f"INSERT INTO {_ROLLUP} SELECT 'hour', d.hour, e.workspace_id, e.tool, NULL, '', count(*), "  # noqa: S608
            f"count(*) FILTER (WHERE e.status <> 'ok'), sum(e.ai_operations), sum(e.latency_ms), "
            f"{_histogram_sql('e.latency_ms')} "
            f"FROM ({pairs}) d JOIN monitoring_usageevent e ON e.workspace_id = d.workspace_id "
            "AND e.at >= d.hour AND e.at < d.hour + interval '1 hour' GROUP BY d.hour, e.workspace_id, e.tool",
            [workspaces, hours],
        )
        days = sorted({(workspace, hour.replace(hour=0)) for workspace, hour in dirty}, key=str)
        day_pairs = "SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]) AS d(workspace_id, day)"
        arguments = [[day[0] for day in days], [day[1] for day in days]]
        cursor.execute(
            f"DELETE FROM monitoring_usagerollup r USING ({day_pairs}) d "  # noqa: S608
            "WHERE r.granularity IN ('day', 'key_day') AND r.workspace_id = d.workspace_id AND r.bucket = d.day",
            arguments,
        )
        for granularity, tool, key, grouped in (
            ("day", "e.tool", "NULL", "e.tool"),
            ("key_day", "''", "e.api_key_id", "e.api_key_id"),
        ):
            cursor.execute(  # from the day's events: by tool and status, and by key and status
                f"INSERT INTO {_ROLLUP} SELECT '{granularity}', d.day, e.workspace_id, {tool}, {key}, e.status, "  # noqa: S608
                f"count(*), count(*) FILTER (WHERE e.status <> 'ok'), sum(e.ai_operations), sum(e.latency_ms), "
                f"{_histogram_sql('e.latency_ms')} "
                f"FROM ({day_pairs}) d JOIN monitoring_usageevent e ON e.workspace_id = d.workspace_id "
                f"AND e.at >= d.day AND e.at < d.day + interval '1 day' GROUP BY d.day, e.workspace_id, {grouped}, "
                "e.status",
                arguments,
            )
    return len(dirty)


def usage_rollup_all(*, workspace_id: UUID | None = None) -> int:
    """Roll up every dirty hour (the beat task), or every dirty hour of one workspace (a dashboard about to read)."""
    total = 0
    while done := usage_rollup(workspace_id=workspace_id):
        total += done
    return total


def usage_events_prune(*, now: datetime | None = None) -> int:
    """Delete raw events older than the retention period (their rollups stay); returns how many went."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.USAGE_EVENT_RETENTION_DAYS)
    deleted, _ = UsageEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


# --- reading -------------------------------------------------------------------------------------------------------


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The latency (ms) below which `fraction` of the calls fall, interpolated inside its histogram bucket; None for
    no calls. The open last bucket reports its lower bound."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[index - 1] if index else 0
            if index >= len(LATENCY_BOUNDS_MS):
                return float(low)
            high = LATENCY_BOUNDS_MS[index]
            return round(low + (high - low) * (rank - seen) / count, 2)
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


def histogram_bucket(latency_ms: float) -> int:
    return bisect_right(LATENCY_BOUNDS_MS, latency_ms)
