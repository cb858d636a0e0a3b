"""Admission of MCP messages (billing.admission.usage_admit) on both backends: the Redis script and its PostgreSQL
twin, against the suite's real Redis and PostgreSQL."""

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync
from django.db import connection

from accounts.api_keys import api_key_revoke
from accounts.models import Role
from accounts.tests.factories import MembershipFactory, issue_key
from billing import quotas
from billing.admission import (
    AdmissionUnavailable,
    EpochMoved,
    RateLimited,
    Touch,
    access_epoch_read,
    usage_admit,
)
from billing.models import Metric, Plan, RequestCount
from billing.quotas import QuotaExceeded, QuotaPolicy, usage_flush, usage_ledger_total
from billing.tests.factories import workspace_on_plan
from core.epoch import access_epoch_bump
from core.threads import parallel_sync, parallel_sync_reset

pytestmark = pytest.mark.django_db

CALL = ((Metric.API_CALLS, 1),)


@pytest.fixture(params=["redis", "database"])
def backend(request, settings) -> str:
    if request.param == "database":
        settings.REDIS_URL = ""
    return request.param


def admit(policy: QuotaPolicy, *, epoch: str, key_id: Any = None, charges=CALL, touch: Touch | None = None) -> None:
    async_to_sync(usage_admit)(policy=policy, key_id=key_id, epoch=epoch, charges=charges, touch=touch)


def epoch_now() -> str:
    return async_to_sync(access_epoch_read)()


def policy_of(workspace, *, requests_per_minute: int | None = None) -> QuotaPolicy:
    if requests_per_minute is not None:
        Plan.objects.filter(accounts__workspace=workspace).update(requests_per_minute_per_key=requests_per_minute)
    return quotas.quota_policy(workspace_id=workspace.pk)


def used(workspace, metric: str = Metric.API_CALLS) -> int:
    return next(status.used for status in quotas.quota_usage(workspace_id=workspace.pk) if status.metric == metric)


def ledger(workspace, metric: str = Metric.API_CALLS) -> int:
    usage_flush()  # (nothing to move without Redis: the twin writes the ledger at once)
    period = quotas.quota_policy(workspace_id=workspace.pk).period_start
    return usage_ledger_total(workspace_id=workspace.pk, metric=metric, period_start=period)


def clear_of_the_minute_boundary() -> None:
    """Requests per minute are counted per clock minute: start a counting test well inside one."""
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


def test_admitted_charges_reach_the_counters_and_the_ledger(backend):
    workspace = workspace_on_plan(api_calls=100, ai_operations=50)
    policy, epoch = policy_of(workspace), epoch_now()

    for _ in range(5):
        admit(policy, epoch=epoch, key_id=uuid.uuid4(), charges=((Metric.API_CALLS, 1), (Metric.AI_OPERATIONS, 3)))

    assert (used(workspace), used(workspace, Metric.AI_OPERATIONS)) == (5, 15)
    assert (ledger(workspace), ledger(workspace, Metric.AI_OPERATIONS)) == (5, 15)


def test_a_charge_over_its_quota_refuses_the_message_and_charges_nothing(backend):
    workspace = workspace_on_plan(api_calls=2, ai_operations=10)
    policy, epoch = policy_of(workspace), epoch_now()
    tool_call = ((Metric.API_CALLS, 1), (Metric.AI_OPERATIONS, 6))
    admit(policy, epoch=epoch, charges=tool_call)

    with pytest.raises(QuotaExceeded) as refused:
        admit(policy, epoch=epoch, charges=tool_call)  # the API call fits, the AI operations do not
    assert refused.value.details | {"upgrade_url": None} == {
        "metric": "ai_operations",
        "limit": 10,
        "used": 6,
        "resets_at": policy.period_end.isoformat(),
        "upgrade_url": None,
    }
    admit(policy, epoch=epoch)
    with pytest.raises(QuotaExceeded) as refused:
        admit(policy, epoch=epoch)
    assert (refused.value.metric, refused.value.used) == ("api_calls", 2)

    assert (used(workspace), used(workspace, Metric.AI_OPERATIONS)) == (2, 6)
    assert (ledger(workspace), ledger(workspace, Metric.AI_OPERATIONS)) == (2, 6)


def test_the_rate_is_limited_per_key_at_the_plans_rate_until_the_next_minute(backend):
    workspace = workspace_on_plan(api_calls=100)
    policy, epoch = policy_of(workspace, requests_per_minute=3), epoch_now()
    key_id, other_key = uuid.uuid4(), uuid.uuid4()
    clear_of_the_minute_boundary()

    for _ in range(3):
        admit(policy, epoch=epoch, key_id=key_id)
    with pytest.raises(RateLimited) as refused:
        admit(policy, epoch=epoch, key_id=key_id)

    error = refused.value
    assert error.code == "rate_limited"
    assert "more than 3 requests this minute" in error.message
    assert error.retry_after is not None
    assert abs(error.retry_after - (60 - time.time() % 60)) <= 1
    admit(policy, epoch=epoch, key_id=other_key)  # another key of the same workspace has its own rate
    for _ in range(5):
        admit(policy, epoch=epoch, key_id=None)  # nothing to count against
    assert used(workspace) == 3 + 1 + 5  # the refused message was not charged


def test_without_redis_a_keys_earlier_minutes_are_deleted_by_its_first_request_of_a_minute(settings):
    settings.REDIS_URL = ""
    policy, epoch = policy_of(workspace_on_plan(), requests_per_minute=10), epoch_now()
    clear_of_the_minute_boundary()
    key_id, minute = str(uuid.uuid4()), int(time.time() // 60)
    RequestCount.objects.create(key_id=key_id, minute=minute - 5, count=10)

    admit(policy, epoch=epoch, key_id=key_id)

    assert list(RequestCount.objects.filter(key_id=key_id).values_list("minute", "count")) == [(minute, 1)]


def test_a_moved_epoch_refuses_and_writes_nothing_then_the_new_epoch_admits(backend):
    workspace = workspace_on_plan(api_calls=100)
    policy, old = policy_of(workspace, requests_per_minute=1), epoch_now()
    key_id = uuid.uuid4()
    clear_of_the_minute_boundary()
    access_epoch_bump()
    new = epoch_now()
    assert new != old

    with pytest.raises(EpochMoved) as moved:
        admit(policy, epoch=old, key_id=key_id)
    assert moved.value.epoch == new
    assert used(workspace) == 0

    admit(policy, epoch=new, key_id=key_id)  # the refused message did not use the minute's one request
    with pytest.raises(RateLimited):
        admit(policy, epoch=new, key_id=key_id)
    assert used(workspace) == ledger(workspace) == 1


def test_revoking_a_key_moves_the_epoch(backend, django_capture_on_commit_callbacks):
    workspace = workspace_on_plan()
    owner = MembershipFactory.create(workspace=workspace, role=Role.OWNER)
    issued = issue_key(owner)
    policy, before = policy_of(workspace), epoch_now()

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(actor=owner, key=issued.key)

    assert epoch_now() != before
    with pytest.raises(EpochMoved):
        admit(policy, epoch=before, key_id=issued.key.pk)


def test_a_crossed_threshold_queues_the_owners_notice_once(backend, django_capture_on_commit_callbacks):
    workspace = workspace_on_plan(api_calls=10)
    policy, epoch = policy_of(workspace), epoch_now()

    with django_capture_on_commit_callbacks() as below:
        for _ in range(7):
            admit(policy, epoch=epoch)
    with django_capture_on_commit_callbacks() as crossing:
        admit(policy, epoch=epoch)  # 8 of 10: 80 %
    with django_capture_on_commit_callbacks() as above:
        admit(policy, epoch=epoch)

    assert (len(below), len(crossing), len(above)) == (0, 1, 0)


def test_a_touch_keeps_the_session_alive_and_last_in_its_keys_use_order(settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    session = f"{settings.MCP_REDIS_PREFIX}:session:{uuid.uuid4()}"
    index = f"{settings.MCP_REDIS_PREFIX}:key:{uuid.uuid4()}:sessions"
    client.set(session, "{}", ex=5)
    client.zadd(index, {"older": 1.0})
    touch = Touch(key=session, ttl=600, index=index, member="this")
    policy, epoch = policy_of(workspace_on_plan()), epoch_now()
    try:
        with pytest.raises(EpochMoved):
            admit(policy, epoch=f"{epoch}-stale", touch=touch)
        assert client.ttl(session) <= 5  # nothing written
        assert client.zscore(index, "this") is None

        admit(policy, epoch=epoch, touch=touch)

        assert 595 <= client.ttl(session) <= 600
        assert 595 <= client.ttl(index) <= 600
        assert abs((client.zscore(index, "this") or 0) - time.time()) < 5
        assert client.zrange(index, 0, -1) == [b"older", b"this"]
    finally:
        client.delete(session, index)


def test_an_unreachable_redis_admits_nothing_and_says_so_plainly(settings):
    policy, epoch = policy_of(workspace_on_plan()), epoch_now()
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there

    with pytest.raises(AdmissionUnavailable) as unavailable:
        admit(policy, epoch=epoch)
    assert unavailable.value.code == "temporarily_unavailable"
    assert "Try again" in unavailable.value.message
    assert "127.0.0.1" not in unavailable.value.message


# --- concurrency ----------------------------------------------------------------------------------------------------


def admit_concurrently(policy: QuotaPolicy, epoch: str, charges, *, threads: int, each: int) -> dict[str, int]:
    """`threads` event loops, each on its own thread, Redis connection and database connection, admitting `each`
    messages one after the other, all starting together; how many were admitted and refused."""
    start = threading.Barrier(threads)
    outcomes: list[str] = []

    async def attempts() -> None:
        token = parallel_sync()  # the twin's database work runs in this loop's own worker thread
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        try:
            start.wait()
            for _ in range(each):
                try:
                    await usage_admit(policy=policy, key_id=None, epoch=epoch, charges=charges)
                    outcomes.append("admitted")
                except QuotaExceeded:
                    outcomes.append("refused")
                except Exception as error:
                    outcomes.append(repr(error))
        finally:
            await loop.run_in_executor(None, lambda: connection.close())  # that thread's connection
            parallel_sync_reset(token)

    workers = [threading.Thread(target=asyncio.run, args=(attempts(),)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_admissions_admit_exactly_the_limit(backend):
    workspace = workspace_on_plan(api_calls=100, ai_operations=10_000)
    policy, epoch = policy_of(workspace), epoch_now()
    tool_call = ((Metric.API_CALLS, 1), (Metric.AI_OPERATIONS, 2))

    outcomes = admit_concurrently(policy, epoch, tool_call, threads=8, each=40)

    assert outcomes == {"admitted": 100, "refused": 220}
    assert (used(workspace), used(workspace, Metric.AI_OPERATIONS)) == (100, 200)  # every charge or none
    assert (ledger(workspace), ledger(workspace, Metric.AI_OPERATIONS)) == (100, 200)
