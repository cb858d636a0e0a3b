"""A load process for the concurrency tests: consume one API call at a time and report what was admitted.

Usage: python -m billing.tests.quota_load WORKSPACE_ID ATTEMPTS
It prints `ready`, waits for a line on stdin (so that every process starts at once), stops early on SIGTERM, and
prints `admitted N refused M`.
"""

import os
import signal
import sys
from uuid import UUID

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    from billing.models import Metric
    from billing.quotas import QuotaExceeded, usage_consume

    workspace_id, attempts = UUID(sys.argv[1]), int(sys.argv[2])
    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    print("ready", flush=True)
    sys.stdin.readline()
    admitted = refused = 0
    for _ in range(attempts):
        if stop:
            break
        try:
            usage_consume(workspace_id=workspace_id, metric=Metric.API_CALLS)
            admitted += 1
        except QuotaExceeded:
            refused += 1
    print(f"admitted {admitted} refused {refused}", flush=True)


if __name__ == "__main__":
    main()
