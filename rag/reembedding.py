"""The active embedding model, and re-embedding every chunk when the operator configures another one.

Search and ingestion use the *active* model (the `ActiveEmbedding` row), not the configured one: a query is embedded
with the model every chunk's `embedding` was made by, so vectors of two models are never compared. When the
configured model (`EMBEDDING_PROVIDER`/`EMBEDDING_MODEL`) differs from the active one:

1. `embeddings_reembed` records it as `next_model` and fills each chunk's `embedding_next` in batches, through the
   embedding cache (keyed by sha256(model + text), shared with ingestion). Search goes on with the active model.
   Progress is the data itself (a chunk whose `model_next` is the target is done), so a killed run resumes where it
   stopped and a second run is a no-op.
2. Ingestion meanwhile embeds new chunks with the active model and, when it can, the configured one too, so a
   document uploaded during the re-embedding is already done; any chunk written without it is picked up before the
   switch.
3. The switch-over is one transaction for all chunks of all knowledge bases: `embedding := embedding_next`,
   `model := model_next`, and the active row moves to the new model. It is global, not per knowledge base, because
   one search reads several knowledge bases (a workspace's own and the global ones published to its plan) with one
   query vector. An advisory lock orders it against ingestion's chunk writes (shared), so no chunk of the old model
   can commit after it; a write that finds the model switched embeds again with the new one.

Re-embedding is the operator's doing, so it is not metered to tenants (ingestion's second vector is not either).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from rag.embedding import Embedder, configured_model, embedder_for
from rag.models import ActiveEmbedding, Chunk, EmbeddingCacheEntry

logger = logging.getLogger(__name__)

SWITCH_LOCK = 0x72616701  # advisory lock: chunk writes hold it shared, the switch-over exclusive
RUN_LOCK = 0x72616702  # advisory lock: one re-embedding run at a time (a killed worker's connection releases it)
EMBED_BATCH = 64
REEMBED_BATCH = 128
TASK_SECONDS = 120.0  # one Celery run's share of the work; it queues the next (well inside CELERY_TASK_TIME_LIMIT)


# --- the active model ------------------------------------------------------------------------------------------------


def active_embedding() -> ActiveEmbedding:
    """The active model's row, made on first use: the model the stored chunks have, else the configured one."""
    state = ActiveEmbedding.objects.filter(pk=1).first()
    if state is None:
        stored = Chunk.objects.values("model").annotate(count=Count("id")).order_by("-count").first()
        state, _created = ActiveEmbedding.objects.get_or_create(
            pk=1, defaults={"model": stored["model"] if stored else configured_model()}
        )
    return state


def active_embedder() -> Embedder:
    """The embedder of the active model: search embeds queries with it."""
    return embedder_for(active_embedding().model)


def ingestion_embedders() -> tuple[Embedder, Embedder | None]:
    """The active model (every chunk's `embedding`) and, while the configured model differs, the configured one
    (`embedding_next`), so a document ingested during a re-embedding needs no second pass."""
    active = active_embedding().model
    configured = configured_model()
    following: Embedder | None = None
    if configured != active:
        try:
            following = embedder_for(configured)
        except Exception:  # the re-embedding will report it; this document still gets the active model's vectors
            logger.warning("cannot load the configured embedding model %s", configured, exc_info=True)
    return embedder_for(active), following


def chunk_write_allowed(model: str) -> bool:
    """Call first inside the transaction that writes chunks embedded by `model`: it holds the switch-over off until
    the transaction ends, and says whether `model` is still the active model (if not, embed again)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [SWITCH_LOCK])
    return active_embedding().model == model


# --- vectors through the cache ---------------------------------------------------------------------------------------


def cache_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


def embed_cached(
    model: Embedder,
    texts: list[str],
    *,
    before: Callable[[int], None] | None = None,
    after_batch: Callable[[int, int], None] | None = None,
) -> tuple[list[Any], int]:
    """Vectors for `texts`, from the cache where `model` embedded the same text before, the rest in batches (then
    cached). `before(misses)` runs before any embedding (to meter or refuse it), `after_batch(done, batches)` after
    each batch. Returns the vectors and how many texts were embedded."""
    keys = [cache_key(model.model, text) for text in texts]
    cached = {entry.key: entry.embedding for entry in EmbeddingCacheEntry.objects.filter(key__in=set(keys))}
    missing = list({key: index for index, key in enumerate(keys) if key not in cached}.values())
    if before is not None:
        before(len(missing))
    batches = max(1, -(-len(missing) // EMBED_BATCH))
    for done, start in enumerate(range(0, len(missing), EMBED_BATCH), start=1):
        batch = missing[start : start + EMBED_BATCH]
        vectors = model.embed([texts[index] for index in batch])
        entries = [
            EmbeddingCacheEntry(key=keys[index], model=model.model, embedding=vector)
            for index, vector in zip(batch, vectors, strict=True)
        ]
        EmbeddingCacheEntry.objects.bulk_create(entries, ignore_conflicts=True)
        cached.update({entry.key: entry.embedding for entry in entries})
        if after_batch is not None:
            after_batch(done, batches)
    return [cached[key] for key in keys], len(missing)


# --- re-embedding ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reembedding:
    """Where a re-embedding stands. `status`: current (nothing to do), in_progress (stopped by its budget; run again
    to go on), switched (done: the target is active), cancelled (the configured model is the active one again),
    waiting (another target is being filled and this run may not change it), busy (another run holds the lock)."""

    status: str
    active: str
    target: str
    done: int = 0
    total: int = 0
    embedded: int = 0

    def __str__(self) -> str:
        if self.status == "current":
            return f"Every chunk is embedded with {self.active}; nothing to do."
        if self.status == "switched":
            return f"Switched to {self.target}: {self.total} chunks ({self.embedded} embedded, the rest from cache)."
        if self.status == "cancelled":
            return f"{self.active} is configured again; dropped the half-made vectors of the previous target."
        if self.status == "waiting":
            return f"A re-embedding into {self.target} is under way; this process is configured for another model."
        if self.status == "busy":
            return "Another re-embedding run is working; it will finish the job."
        share = 100 * self.done // self.total if self.total else 100
        return f"{self.active} → {self.target}: {self.done}/{self.total} chunks ({share}%), {self.embedded} embedded."


@contextmanager
def _run_lock() -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [RUN_LOCK])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [RUN_LOCK])


def embeddings_reembed(
    *,
    retarget: bool = False,
    time_budget: float | None = None,
    max_batches: int | None = None,
    batch_size: int = REEMBED_BATCH,
    report: Callable[[Reembedding], None] | None = None,
) -> Reembedding:
    """Re-embed every chunk with the configured model and switch to it, or go on with a run that stopped. Stops
    with `in_progress` after `time_budget` seconds or `max_batches` batches. `retarget` (the operator's command)
    may abandon a re-embedding into another model; the automatic task only finishes the one it finds."""
    with _run_lock() as acquired:
        if not acquired:
            state = active_embedding()
            return Reembedding("busy", state.model, state.next_model)
        return _reembed(
            retarget=retarget, time_budget=time_budget, max_batches=max_batches, batch_size=batch_size, report=report
        )


def _reembed(
    *,
    retarget: bool,
    time_budget: float | None,
    max_batches: int | None,
    batch_size: int,
    report: Callable[[Reembedding], None] | None,
) -> Reembedding:
    state = active_embedding()
    active, target = state.model, configured_model()
    if target == active:
        if state.next_model and retarget:
            _cancel()
            return Reembedding("cancelled", active, state.next_model)
        if state.next_model:
            logger.warning("re-embedding into %s waits: this process is configured for %s", state.next_model, target)
            return Reembedding("waiting", active, state.next_model)
        return Reembedding("current", active, target)
    if state.next_model and state.next_model != target and not retarget:
        logger.warning("re-embedding into %s waits: this process is configured for %s", state.next_model, target)
        return Reembedding("waiting", active, state.next_model)
    if state.next_model != target:
        ActiveEmbedding.objects.filter(pk=1, model=active).update(next_model=target, updated_at=timezone.now())
    model = embedder_for(target)
    deadline = None if time_budget is None else time.monotonic() + time_budget
    total = Chunk.objects.count()
    done = Chunk.objects.filter(model_next=target).count()
    embedded = batches = 0
    last_id = 0
    while True:
        rows = list(
            Chunk.objects.filter(id__gt=last_id)
            .exclude(model_next=target)
            .order_by("id")
            .values_list("id", "text")[:batch_size]
        )
        if not rows:
            if _switch(active=active, target=target):
                logger.info("embedding model switched from %s to %s", active, target)
                return Reembedding("switched", active, target, done=total, total=total, embedded=embedded)
            last_id = 0  # chunks written meanwhile without the new vector: another pass
            total = Chunk.objects.count()
            continue
        if (max_batches is not None and batches >= max_batches) or (
            deadline is not None and time.monotonic() > deadline
        ):
            return Reembedding("in_progress", active, target, done=done, total=total, embedded=embedded)
        vectors, misses = embed_cached(model, [text for _id, text in rows])
        _store_next([chunk_id for chunk_id, _text in rows], vectors, target)
        embedded += misses
        batches += 1
        done = min(done + len(rows), total)
        last_id = rows[-1][0]
        if report is not None:
            report(Reembedding("in_progress", active, target, done=done, total=total, embedded=embedded))


def _store_next(ids: list[int], vectors: list[Any], target: str) -> None:
    literals = ["[" + ",".join(repr(float(value)) for value in vector) + "]" for vector in vectors]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rag_chunk AS c SET embedding_next = v.embedding::vector, model_next = %s "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, embedding) WHERE c.id = v.id",
            [target, ids, literals],
        )


def _switch(*, active: str, target: str) -> bool:
    """Every chunk onto `target` and the active row with them, in one transaction; False (nothing changed) when a
    chunk still lacks its new vector."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SWITCH_LOCK])
        state = ActiveEmbedding.objects.select_for_update().get(pk=1)
        if state.model != active or state.next_model != target:
            raise RuntimeError(f"the active embedding row changed under a re-embedding run: {state}")
        if Chunk.objects.exclude(model_next=target).exists():
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE rag_chunk SET embedding = embedding_next, model = model_next, "
                "embedding_next = NULL, model_next = ''"
            )
        state.model, state.next_model, state.switched_at = target, "", timezone.now()
        state.save(update_fields=["model", "next_model", "switched_at", "updated_at"])
    return True


def _cancel() -> None:
    with transaction.atomic():
        ActiveEmbedding.objects.filter(pk=1).update(next_model="", updated_at=timezone.now())
        Chunk.objects.exclude(model_next="").update(model_next="", embedding_next=None)


def reembedding_status() -> Reembedding:
    """Where things stand, without doing anything (for the command's --status)."""
    state = active_embedding()
    target = state.next_model or configured_model()
    total = Chunk.objects.count()
    if target == state.model:
        return Reembedding("current", state.model, target, done=total, total=total)
    done = Chunk.objects.filter(model_next=target).count()
    return Reembedding("in_progress", state.model, target, done=done, total=total)
