"""What the RAG benchmarks share: their servers, a throw-away database and media folder, a workspace on the unlimited
plan, and the lines that say where and how a run was made.

The benchmarks run the embedded PostgreSQL and Redis of their own, in `var/bench` (`TOOLPORT_VAR_DIR`): a benchmark
that loads 100,000 chunks neither slows nor stops the development server or a test run on the same machine, and
is not stopped by them. Each run gets a fresh database there, created and migrated like the test suite's (Django's
test-database creation) and dropped at the end. Uploaded files go to a temporary folder; Celery messages to an
in-process broker (the benchmarks run `document_ingest`, the task's body, themselves, so they can time it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def rag_environment(database: str, *, keep: bool = False, reuse: bool = False) -> Iterator[None]:
    """The benchmarks' PostgreSQL and Redis (started if not running), Django set up on a fresh database `database`
    (dropped at the end unless `keep`), or on the one a `keep` run left (`reuse`)."""
    sys.path.insert(0, str(ROOT))
    media = tempfile.TemporaryDirectory(prefix="toolport-bench-")
    os.environ["TOOLPORT_VAR_DIR"] = str(ROOT / "var" / "bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ["TOOLPORT_MEDIA_ROOT"] = media.name
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
    # Buffers that hold the 100k-chunk knowledge base's indexes and rows (~750 MB with TOAST), as a server sized for
    # that data would; the development default of 512 MB reads part of them from the OS cache (bench/README.md).
    os.environ.setdefault("TOOLPORT_POSTGRES_SHARED_BUFFERS", "1GB")

    from core.embedded import redis as embedded_redis
    from core.embedded.postgres import EmbeddedPostgres

    servers: list[EmbeddedPostgres | embedded_redis.EmbeddedRedis] = [
        EmbeddedPostgres(),
        embedded_redis.EmbeddedRedis(),
    ]
    started = [server for server in servers if server.start()]
    try:
        import django

        django.setup()
        from django.db import connection

        logging.getLogger("rag").setLevel(logging.WARNING)  # no line per ingested document among the figures

        original = connection.settings_dict["NAME"]
        connection.settings_dict.setdefault("TEST", {})["NAME"] = database
        if reuse:
            connection.close()
            connection.settings_dict["NAME"] = database
        else:
            connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            yield
        finally:
            if keep:
                connection.close()
            else:
                connection.creation.destroy_test_db(original, verbosity=0)
    finally:
        for server in reversed(started):
            server.stop()
        media.cleanup()


def bench_workspace(name: str) -> Any:
    """A workspace on the Enterprise plan (no quota limits) with an owner; returns the owner's membership."""
    from accounts.models import Membership, Role, User, Workspace
    from billing.models import BillingAccount, Plan, Tier

    user = User.objects.create_user(email=f"{name}@bench.example.com", password=None)
    workspace = Workspace.objects.create(name=name)
    BillingAccount.objects.create(workspace=workspace, plan=Plan.objects.get(tier=Tier.ENTERPRISE))
    return Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)


def print_header() -> None:
    """The machine, the command and the commit, so a figure can be traced to what made it."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(f"commit: {commit}{' (with uncommitted changes in the tree)' if dirty else ''}")
