"""Benchmark: the tenant dashboard and its data endpoints over 1,000,000 usage events.

Run: make bench   (or: .venv/bin/python bench/dashboard.py [--events 1000000] [--requests 30])

It starts the embedded PostgreSQL (and a private Redis), makes a throw-away database, generates the events of one busy
workspace over 90 days (20 tools, 5 keys, every status, latencies from 1 ms to seconds) with the product's own writer
(COPY in batches), rolls them up with the product's rollup, then asks every dashboard endpoint through Django's test
client as the signed-in owner (full middleware stack, real views, real queries) and prints p50/p95/max per endpoint
with the machine it ran on. The target is p95 < 150 ms for each.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATABASE = "toolport_bench_dashboard"
TARGET_MS = 150.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per endpoint (after 3 warm-ups)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (for --reuse)")
    parser.add_argument("--reuse", action="store_true", help="time the endpoints over the database a --keep run left")
    arguments = parser.parse_args()

    from core.embedded import redis as embedded_redis
    from core.embedded.postgres import EmbeddedPostgres

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    database, redis_server = EmbeddedPostgres(), embedded_redis.EmbeddedRedis()
    started = [server for server in (database, redis_server) if server.start()]
    try:
        import psycopg

        admin = database.connection
        if not arguments.reuse:
            with psycopg.connect(host=admin.host, user=admin.user, dbname=admin.name, autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
                connection.execute(f"CREATE DATABASE {DATABASE}")
        os.environ["DATABASE_URL"] = f"postgresql://{admin.user}@/{DATABASE}?host={admin.host}"
        try:
            run(arguments.events, arguments.requests, reuse=arguments.reuse)
        finally:
            from django.db import connections

            connections.close_all()
            if not arguments.keep:
                with psycopg.connect(host=admin.host, user=admin.user, dbname=admin.name, autocommit=True) as db:
                    db.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    finally:
        for server in reversed(started):
            server.stop()


def _events(workspace_id, keys, count: int, now: float):
    from monitoring.calls import CallStatus, ToolCall

    rng = random.Random(7)  # noqa: S311 - reproducible synthetic data, not secrets
    tools = [f"tool_{n:02d}" for n in range(20)]
    weights = [1 / (rank + 1) for rank in range(len(tools))]  # a few tools take most calls
    statuses = [CallStatus.OK] * 92 + [CallStatus.TOOL_ERROR] * 5 + [CallStatus.DENIED] * 2 + [CallStatus.QUOTA]
    span = 90 * 86400
    for _ in range(count):
        status = rng.choice(statuses)
        yield ToolCall(
            workspace_id=workspace_id,
            tool=rng.choices(tools, weights)[0],
            status=status,
            latency_ms=rng.lognormvariate(2.5, 1.0),
            transport="streamable-http",
            api_key_id=rng.choice(keys),
            at=now - rng.random() * span,
        )


def run(events: int, requests: int, *, reuse: bool = False) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from accounts.models import ApiKey, Membership, Role
    from accounts.tests.factories import MembershipFactory, issue_key
    from billing.models import BillingAccount, Plan, Tier
    from billing.plans import plans_seed
    from monitoring.usage import usage_events_write, usage_rollup_all

    plans_seed()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}   events: {events:,}   requests per endpoint: {requests}")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # Django's test client
    if reuse:
        owner = Membership.objects.get(workspace__name="bench")
        workspace_id = owner.workspace_id
        keys = [*ApiKey.objects.filter(workspace_id=workspace_id).order_by("name").values_list("pk", flat=True), None]
        now = time.time()
        run_requests(owner, keys, now, requests)
        return
    owner = MembershipFactory.create(role=Role.OWNER, workspace__name="bench")
    workspace_id = owner.workspace_id
    BillingAccount.objects.create(workspace=owner.workspace, plan=Plan.objects.get(tier=Tier.ENTERPRISE))
    keys = [issue_key(owner, name=f"key {n}").key.pk for n in range(5)] + [None]
    other = MembershipFactory.create(role=Role.OWNER).workspace_id  # another tenant's calls share the tables

    started = time.perf_counter()
    now = time.time()
    batch: list = []
    for call in _events(workspace_id, keys, events, now):
        batch.append(call)
        if len(batch) == 50_000:
            usage_events_write(batch)
            batch = []
    usage_events_write(batch + list(_events(other, [None], 50_000, now)))
    written = time.perf_counter() - started
    started = time.perf_counter()
    hours = usage_rollup_all()
    rolled = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE monitoring_usageevent")
        cursor.execute("VACUUM ANALYZE monitoring_usagerollup")
        cursor.execute("SELECT count(*) FROM monitoring_usagerollup")
        rollups = cursor.fetchone()[0]
    print(
        f"wrote {events + 50_000:,} events in {written:.1f} s ({(events + 50_000) / written:,.0f}/s); rolled up "
        f"{hours:,} hours into {rollups:,} rollup rows in {rolled:.1f} s"
    )

    run_requests(owner, keys, now, requests)


def run_requests(owner, keys, now: float, requests: int) -> None:
    from django.test import Client

    from monitoring.dashboards import CallFilters, recent_calls

    workspace_id = owner.workspace_id
    client = Client()
    client.force_login(owner.user)
    client.cookies["tz"] = "America/New_York"
    base = f"/console/w/{workspace_id}"
    deep_cursor = ""
    for _ in range(50):  # the cursor of page 51
        _page, deep_cursor = recent_calls(workspace_id=workspace_id, filters=CallFilters(), cursor=deep_cursor)

    def day(days_ago: int) -> str:
        return time.strftime("%Y-%m-%dT00:00", time.gmtime(now - days_ago * 86400))

    endpoints = [
        ("dashboard (console home)", f"{base}/"),
        ("charts, 7 days", f"{base}/usage/charts/?days=7"),
        ("charts, 30 days", f"{base}/usage/charts/?days=30"),
        ("charts, 90 days", f"{base}/usage/charts/?days=90"),
        ("top tools and keys, 30 days", f"{base}/usage/summary/?days=30"),
        ("top tools and keys, 90 days", f"{base}/usage/summary/?days=90"),
        ("quota bars", f"{base}/usage/quotas/"),
        ("recent calls, first page", f"{base}/usage/calls/"),
        ("recent calls, page 51", f"{base}/usage/calls/?cursor={deep_cursor}"),
        ("recent calls, one tool", f"{base}/usage/calls/?tool=tool_07"),
        ("recent calls, status quota", f"{base}/usage/calls/?status=quota"),
        ("recent calls, one key", f"{base}/usage/calls/?key={keys[2]}"),
        ("recent calls, a past day", f"{base}/usage/calls/?since={day(40)}&until={day(39)}"),
        ("CSV export, one tool, one day", f"{base}/usage/calls.csv?tool=tool_03&since={day(10)}&until={day(9)}"),
    ]
    print(f"\n{'endpoint':<32} {'p50':>9} {'p95':>9} {'max':>9}")
    worst = 0.0
    for name, url in endpoints:
        timings = []
        for attempt in range(requests + 3):
            start = time.perf_counter()
            response = client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)  # type: ignore[attr-defined]
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if attempt >= 3:
                timings.append(elapsed)
        timings.sort()
        p50, p95 = statistics.median(timings), timings[max(0, int(len(timings) * 0.95) - 1)]
        worst = max(worst, p95)
        print(f"{name:<32} {p50:>7.1f}ms {p95:>7.1f}ms {timings[-1]:>7.1f}ms")
    verdict = "met" if worst < TARGET_MS else "NOT met"
    print(f"\nworst p95: {worst:.1f} ms; target p95 < {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
