"""Benchmark: the cost of one quota check + consume (`usage_consume`), in-process, on both counters.

Run: make bench   (or: .venv/bin/python bench/quota_consume.py [--calls 20000])

It starts the embedded PostgreSQL and a private Redis (like the test suite), uses a throw-away workspace on an
unlimited plan, times each call with perf_counter_ns, and prints the median, p95 and p99 per backend with the
machine it ran on. The target is a median under 1 ms with Redis.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    arguments = parser.parse_args()

    from core.embedded import redis as embedded_redis
    from core.embedded.postgres import EmbeddedPostgres

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    database, redis_server = EmbeddedPostgres(), embedded_redis.EmbeddedRedis()
    started = [server for server in (database, redis_server) if server.start()]
    try:
        run(arguments.calls)
    finally:
        for server in reversed(started):
            server.stop()


def run(calls: int) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Workspace
    from billing.models import BillingAccount, Metric, Plan, Tier
    from billing.plans import plans_seed
    from billing.quotas import usage_consume, usage_flush

    plans_seed()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}   calls per backend: {calls:,}")
    redis_url = settings.REDIS_URL
    for backend, url in (("redis", redis_url), ("postgresql", "")):
        settings.REDIS_URL = url
        workspace = Workspace.objects.create(name="bench")
        BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.ENTERPRISE))
        try:
            for _ in range(200):  # warm up: policy cache, connections, script load
                usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
            timings = []
            for _ in range(calls):
                start = time.perf_counter_ns()
                usage_consume(workspace_id=workspace.pk, metric=Metric.API_CALLS)
                timings.append(time.perf_counter_ns() - start)
            flush_start = time.perf_counter()
            moved = usage_flush()
            flush_seconds = time.perf_counter() - flush_start
        finally:
            workspace.delete()
        timings.sort()
        median = statistics.median(timings) / 1e6
        p95, p99 = timings[int(len(timings) * 0.95)] / 1e6, timings[int(len(timings) * 0.99)] / 1e6
        line = f"{backend:>10}: median {median:.3f} ms   p95 {p95:.3f} ms   p99 {p99:.3f} ms"
        if moved:
            line += f"   (flush of {moved:,} entries: {flush_seconds:.2f} s)"
        print(line)


if __name__ == "__main__":
    main()
