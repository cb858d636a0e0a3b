"""A Celery worker killed (SIGKILL, pool child and all) in the middle of embedding a document: the message stays
unacknowledged in Redis, a new worker gets it once the broker's visibility timeout has passed, and the document ends
ready with exactly one set of chunks. What was embedded before the kill comes from the embedding cache, so no chunk is
charged twice.

Real processes throughout: `celery -A config worker` (prefork, as in production) on the test database and the
suite's Redis broker, with `CELERY_VISIBILITY_TIMEOUT` lowered so the redelivery happens within the test."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection

from accounts.models import Membership, Role
from accounts.tests.factories import MembershipFactory
from billing.models import BillingAccount, Metric
from billing.quotas import quota_policy_forget, quota_usage
from billing.tests.factories import workspace_on_plan
from config.celery import app
from core.database import database_url
from core.embedded.paths import BASE_DIR
from rag.models import Chunk, Document, DocumentStatus, EmbeddingCacheEntry
from rag.services import EMBED_BATCH, document_upload, knowledge_base_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT = 4  # seconds; production keeps the default hour (config/settings/base.py)
WORDS = [
    *("inlet", "shock", "train", "pressure", "recovery", "combustor", "boundary", "layer", "nozzle", "thrust"),
    *("ramjet", "scramjet", "diffuser", "mach", "flow", "separation", "heat", "flux", "wall", "turbulence"),
    *("fuel", "injection", "mixing", "ignition", "stagnation", "enthalpy", "throat", "plume", "cowl", "ramp"),
]


class Worker:
    """`celery -A config worker` in its own process group, its output collected."""

    def __init__(self, name: str, environment: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                f"--hostname={name}@%h",
            ],
            cwd=BASE_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.output.append(line)

    def log(self) -> str:
        return "".join(self.output)

    def kill(self) -> None:
        """SIGKILL to the whole group: the main process and its pool child die at once, acknowledging nothing."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def start_worker(media) -> Iterator:
    """Start workers on the test database, this run's Redis and `media`; every one is killed at the end."""
    started: list[Worker] = []
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(connection),
        "TOOLPORT_MEDIA_ROOT": str(media),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "PYTHONUNBUFFERED": "1",
    }

    def start(name: str) -> Worker:
        worker = Worker(name, environment)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def _member() -> Membership:
    workspace = workspace_on_plan(api_calls=None, ai_operations=100_000)
    plan = BillingAccount.objects.get(workspace=workspace).plan
    plan.storage_bytes = 50_000_000
    plan.save()
    quota_policy_forget(workspace_id=workspace.pk)
    return MembershipFactory.create(workspace=workspace, role=Role.ADMIN)


def _text(chunks_wanted: int) -> bytes:
    """Prose of random words (fresh each run, so nothing is in the embedding cache yet) about `chunks_wanted` chunks
    long: more than one embedding batch, so the worker can be killed between two."""
    rng = random.Random(uuid.uuid4().int)
    paragraphs = []
    for _ in range(chunks_wanted * 3):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))).capitalize() for _ in range(4)]
        paragraphs.append(". ".join(sentences) + f". Run {rng.randrange(10**9)}.")
    return "\n\n".join(paragraphs).encode()


def _ai_operations(member: Membership) -> int:
    return {status.metric: status.used for status in quota_usage(workspace_id=member.workspace_id)}[
        Metric.AI_OPERATIONS
    ]


def _unacknowledged(document: Document) -> dict[str, float]:
    """The broker's unacknowledged messages for this document's ingestion: task id → when it was delivered."""
    with app.connection_for_write() as broker:
        client = broker.default_channel.client
        held = {}
        for tag, message in client.hgetall("unacked").items():
            headers = json.loads(message)[0]["headers"]
            if str(document.pk) in headers["argsrepr"]:
                held[headers["id"]] = float(client.zscore("unacked_index", tag) or 0)
        return held


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def test_a_worker_killed_mid_document_leaves_it_to_be_redelivered_and_finished_once(start_worker):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="research")
    cached_before = EmbeddingCacheEntry.objects.count()
    document = document_upload(actor=member, knowledge_base=knowledge_base, name="inlets.txt", data=_text(50))

    started = time.monotonic()
    first = start_worker("first")

    def mid_embedding() -> bool:
        document.refresh_from_db()
        return document.status == DocumentStatus.EMBEDDING and 40 < document.progress < 90

    _wait_for(mid_embedding, 60, f"embedding past the first batch. Worker output:\n{first.log()}")
    first.kill()
    killed_at = time.monotonic()
    killed_after = killed_at - started

    document.refresh_from_db()
    assert document.status == DocumentStatus.EMBEDDING, "the first worker finished before it could be killed"
    assert not Chunk.objects.filter(document=document).exists()
    embedded_before_kill = EmbeddingCacheEntry.objects.count() - cached_before
    assert embedded_before_kill >= EMBED_BATCH  # at least one batch was embedded and cached
    charged_before_kill = _ai_operations(member)
    ((task_id, delivered_at),) = _unacknowledged(document).items()  # not lost: held by the broker, unacknowledged
    assert f"Task rag.document_ingest[{task_id}] received" in first.log()

    # The broker hands it out again once it has been unacknowledged for longer than the visibility timeout; a new
    # worker restores such messages as it starts.
    time.sleep(max(0.0, delivered_at + VISIBILITY_TIMEOUT + 0.5 - time.time()))
    second = start_worker("second")

    def settled() -> bool:
        document.refresh_from_db()
        return document.status in (DocumentStatus.READY, DocumentStatus.FAILED)

    _wait_for(settled, 60, f"the redelivered document settling. Worker output:\n{second.log()}")
    finished_after = time.monotonic() - killed_at

    assert (document.status, document.progress, document.error) == (DocumentStatus.READY, 100, "")
    chunks = list(Chunk.objects.filter(document=document).order_by("position"))
    assert document.chunk_count == len(chunks) > EMBED_BATCH
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    texts = [chunk.text for chunk in chunks]
    assert len(set(texts)) == len(texts)  # one set of chunks, not two interleaved
    assert f"Task rag.document_ingest[{task_id}] succeeded" in second.log()  # the same message, redelivered
    _wait_for(lambda: not _unacknowledged(document), 10, "the redelivered message being acknowledged")

    # Metering: each distinct chunk embedded once, and charged once; what the first worker embedded came from the
    # cache the second time.
    assert EmbeddingCacheEntry.objects.count() - cached_before == len(set(texts))
    charged = _ai_operations(member)
    print(
        f"\nchunks={len(chunks)} embedded_before_kill={embedded_before_kill} charged_before_kill={charged_before_kill}"
        f" charged_total={charged} killed_after={killed_after:.1f}s ready_after_kill={finished_after:.1f}s"
    )
    assert charged == len(set(texts))
