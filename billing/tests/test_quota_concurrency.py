"""Quotas under real concurrency: several processes consume against one limit on real PostgreSQL and Redis; one is
killed with SIGKILL mid-load; afterwards the durable ledger equals exactly what was admitted."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from billing import quotas
from billing.models import Metric, QuotaCounter
from billing.tests.factories import workspace_on_plan
from core.database import database_url
from core.embedded.paths import BASE_DIR

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["redis", "database"])
def environment(request, settings):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(connection)}
    if request.param == "database":
        settings.REDIS_URL = ""
        env["REDIS_URL"] = ""
    return env


def _start(count: int, workspace_id, attempts: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    """Start `count` load processes at once and return when every one is ready to consume."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "billing.tests.quota_load", str(workspace_id), str(attempts)],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:  # go, all together
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    return processes


def _admitted(process: subprocess.Popen[str]) -> int:
    output = process.stdout.read() if process.stdout else ""
    process.wait(timeout=120)
    match = re.search(r"admitted (\d+)", output)
    assert match, output
    return int(match.group(1))


def _durable(workspace) -> tuple[int, int]:
    quotas.usage_flush()
    period = quotas.quota_policy(workspace_id=workspace.pk).period_start
    ledger = quotas.usage_ledger_total(workspace_id=workspace.pk, metric=Metric.API_CALLS, period_start=period)
    counter = QuotaCounter.objects.get(workspace=workspace, metric=Metric.API_CALLS, period_start=period).used
    return ledger, counter


def test_parallel_processes_never_over_admit(environment):
    workspace = workspace_on_plan(api_calls=600)
    processes = _start(4, workspace.pk, 300, environment)  # 1,200 attempts for 600 places

    admitted = sum(_admitted(process) for process in processes)

    assert admitted == 600
    assert _durable(workspace) == (600, 600)


def test_a_killed_process_loses_nothing_that_was_admitted(environment):
    workspace = workspace_on_plan(api_calls=None)
    victim, *survivors = _start(3, workspace.pk, 1_000_000, environment)
    time.sleep(1.5)

    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    for survivor in survivors:
        survivor.send_signal(signal.SIGTERM)
    reported = sum(_admitted(survivor) for survivor in survivors)

    ledger, counter = _durable(workspace)
    policy = quotas.quota_policy(workspace_id=workspace.pk)
    admitted = quotas.counters().used(policy, Metric.API_CALLS)  # what admission itself counted
    assert reported > 0
    assert ledger == counter == admitted
    assert admitted > reported  # the killed process had admitted some too, and none of it was lost
