"""Knowledge bases and documents: create, upload (every limit checked before anything is stored), ingest, retry,
delete.

Ingestion (`document_ingest`, run by the Celery task) is idempotent: it rebuilds the document's chunks from its file
in one transaction, so a worker killed half-way leaves the document to be redelivered and finished with no duplicate
chunks. Progress is written on the document as it goes, for the console's progress bar.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from typing import Any
from uuid import UUID

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Membership, Role
from billing.models import Metric
from billing.quotas import QuotaExceeded, billing_account_get, effective_plan, quota_check, usage_consume
from core.audit import audit_record
from core.errors import Conflict, InvalidInput, LimitReached
from rag.chunking import Piece, chunks_of
from rag.embedding import Embedder, EmbedderUnavailable, embedder
from rag.extraction import CONTENT_TYPES, ExtractionError, check, extract
from rag.models import Chunk, Document, DocumentStatus, EmbeddingCacheEntry, KnowledgeBase

logger = logging.getLogger(__name__)

EMBED_BATCH = 64
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")


# --- knowledge bases -----------------------------------------------------------------------------------------------


@transaction.atomic
def knowledge_base_create(
    *, actor: Membership, name: str, title: str = "", description: str = "", request: Any = None
) -> KnowledgeBase:
    actor.require_role(Role.ADMIN, "create knowledge bases")
    name = name.strip().lower()
    if not _NAME.match(name):
        raise InvalidInput(
            "A knowledge base name is 1-60 lowercase letters, digits and hyphens, starting with a letter or digit.",
            details={"field": "name"},
        )
    if KnowledgeBase.objects.filter(workspace=actor.workspace, name=name).exists():
        raise Conflict(f"This workspace already has a knowledge base named {name}.", details={"field": "name"})
    knowledge_base = KnowledgeBase.objects.create(
        workspace=actor.workspace, name=name, title=title.strip()[:200], description=description.strip()
    )
    audit_record(
        action="knowledge_base.create",
        actor=actor.user,
        workspace=actor.workspace,
        target=knowledge_base,
        request=request,
        detail={"name": name},
    )
    return knowledge_base


# --- storage -------------------------------------------------------------------------------------------------------


def stored_bytes(workspace_id: UUID) -> int:
    """What the workspace's documents take (the storage quota's measure, registered with billing)."""
    total = Document.objects.filter(workspace_id=workspace_id).aggregate(total=Sum("size_bytes"))["total"]
    return int(total or 0)


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "document"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base)[-120:]


def _storage_key(workspace_id: UUID, name: str) -> str:
    now = timezone.now()
    return f"workspaces/{workspace_id}/documents/{now:%Y}/{now:%m}/{uuid.uuid4()}-{_safe_name(name)}"


# --- documents -----------------------------------------------------------------------------------------------------


def document_upload(
    *,
    actor: Membership,
    knowledge_base: KnowledgeBase,
    name: str,
    data: bytes,
    tags: list[str] | None = None,
    source_url: str = "",
    request: Any = None,
) -> Document:
    """Accept a file into a knowledge base and queue its ingestion; raises (and stores nothing) when it is too big,
    over the storage quota, of a kind we cannot read, or already in this knowledge base."""
    actor.require_role(Role.MEMBER, "upload documents")
    if knowledge_base.workspace_id != actor.workspace_id:
        raise InvalidInput("That knowledge base belongs to another workspace.")
    workspace_id = actor.workspace_id
    plan = effective_plan(billing_account_get(workspace_id=workspace_id), timezone.now())
    if len(data) > plan.max_upload_bytes:
        raise LimitReached(
            f"{name} is {len(data) / 1_048_576:.1f} MB; the {plan.name} plan accepts files up to "
            f"{plan.max_upload_bytes / 1_048_576:.0f} MB. Upgrade the plan for larger files."
        )
    kind = check(name, data)  # refuses wrong, damaged, encrypted and empty files before storing
    digest = hashlib.sha256(data).hexdigest()
    existing = Document.objects.filter(knowledge_base=knowledge_base, sha256=digest).first()
    if existing is not None:
        raise Conflict(
            f"{name} has the same content as {existing.name}, already in {knowledge_base.name}.",
            details={"document": str(existing.pk)},
        )
    quota_check(workspace_id=workspace_id, metric=Metric.STORAGE_BYTES, amount=max(len(data), 1))
    key = default_storage.save(_storage_key(workspace_id, name), ContentFile(data))
    try:
        with transaction.atomic():
            document = Document.objects.create(
                workspace_id=workspace_id,
                knowledge_base=knowledge_base,
                name=name[:255],
                title="",
                content_type=CONTENT_TYPES[kind],
                size_bytes=len(data),
                sha256=digest,
                file=key,
                source_url=source_url,
                tags=[str(tag)[:50] for tag in (tags or [])][:20],
                progress=5,
            )
            audit_record(
                action="document.upload",
                actor=actor.user,
                workspace=actor.workspace,
                target=document,
                request=request,
                detail={"name": document.name, "knowledge_base": knowledge_base.name, "bytes": len(data)},
            )
            transaction.on_commit(lambda: _enqueue(document.pk))
    except IntegrityError as error:  # the same content uploaded twice at once: keep the first
        default_storage.delete(key)
        raise Conflict(f"{name} is already in {knowledge_base.name}.") from error
    except BaseException:
        default_storage.delete(key)
        raise
    return document


def _enqueue(document_id: UUID) -> None:
    from rag.tasks import document_ingest_task

    document_ingest_task.delay(str(document_id))


def document_retry(*, actor: Membership, document: Document) -> Document:
    actor.require_role(Role.MEMBER, "retry ingestion")
    if document.status != DocumentStatus.FAILED:
        raise Conflict(f"{document.name} has not failed; only failed documents can be retried.")
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.UPLOADED, progress=5, error="")
    transaction.on_commit(lambda: _enqueue(document.pk))
    document.refresh_from_db()
    return document


@transaction.atomic
def document_delete(*, actor: Membership, document: Document, request: Any = None) -> None:
    """The document, its chunks and its file go (the file after the commit)."""
    actor.require_role(Role.MEMBER, "delete documents")
    key = str(document.file.name)
    audit_record(
        action="document.delete",
        actor=actor.user,
        workspace=actor.workspace,
        target=document,
        request=request,
        detail={"name": document.name},
    )
    document.delete()
    transaction.on_commit(lambda: default_storage.delete(key))


# --- ingestion -----------------------------------------------------------------------------------------------------


def _progress(document_id: UUID, status: str, progress: int) -> None:
    Document.objects.filter(pk=document_id).exclude(status=DocumentStatus.READY).update(
        status=status, progress=progress
    )


def _fail(document_id: UUID, reason: str) -> None:
    Document.objects.filter(pk=document_id).update(status=DocumentStatus.FAILED, error=reason[:500])


def document_ingest(document_id: UUID) -> str:
    """Extract, chunk, embed and index one document; returns its final status. Safe to run again at any point."""
    document = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if document is None or document.status == DocumentStatus.READY:
        return document.status if document else "gone"
    _progress(document.pk, DocumentStatus.EXTRACTING, 15)
    try:
        with default_storage.open(str(document.file.name), "rb") as file:
            data = file.read()
        _kind, extracted = extract(document.name, data)
        _progress(document.pk, DocumentStatus.CHUNKING, 30)
        model = embedder()
        pieces = chunks_of(extracted, model)
        vectors = _embed(document, pieces, model)
    except (ExtractionError, QuotaExceeded, EmbedderUnavailable) as error:
        _fail(document.pk, getattr(error, "message", str(error)))
        return DocumentStatus.FAILED
    except FileNotFoundError:
        _fail(document.pk, "The stored file is missing; delete the document and upload it again.")
        return DocumentStatus.FAILED
    with transaction.atomic():
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None:  # deleted meanwhile
            return "gone"
        Chunk.objects.filter(document=locked).delete()
        Chunk.objects.bulk_create(
            Chunk(
                workspace_id=locked.workspace_id,
                knowledge_base_id=locked.knowledge_base_id,
                document=locked,
                position=position,
                text=piece.text,
                heading_path=piece.heading_path,
                start=piece.start,
                end=piece.end,
                token_count=piece.token_count,
                model=model.model,
                embedding=vector,
                search_vector="",
            )
            for position, (piece, vector) in enumerate(zip(pieces, vectors, strict=True))
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE rag_chunk SET search_vector = "
                "setweight(to_tsvector('english', coalesce(heading_path, '')), 'B') || "
                "to_tsvector('english', text) WHERE document_id = %s",
                [locked.pk],
            )
        locked.title = extracted.title[:300]
        locked.status = DocumentStatus.READY
        locked.progress = 100
        locked.error = ""
        locked.chunk_count = len(pieces)
        locked.save(update_fields=["title", "status", "progress", "error", "chunk_count", "updated_at"])
    return DocumentStatus.READY


def _cache_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


def _embed(document: Document, pieces: list[Piece], model: Embedder) -> list[Any]:
    """Vectors for the pieces: from the cache where the same text was embedded by the same model, the rest in
    batches (each counted as AI operations, refused before any work when the quota cannot cover them)."""
    keys = [_cache_key(model.model, piece.text) for piece in pieces]
    cached = {entry.key: entry.embedding for entry in EmbeddingCacheEntry.objects.filter(key__in=set(keys))}
    missing = [index for index, key in enumerate(keys) if key not in cached]
    if missing and document.workspace_id is not None:
        usage_consume(workspace_id=document.workspace_id, metric=Metric.AI_OPERATIONS, amount=len(missing))
    _progress(document.pk, DocumentStatus.EMBEDDING, 40)
    batches = max(1, -(-len(missing) // EMBED_BATCH))
    for done, start in enumerate(range(0, len(missing), EMBED_BATCH), start=1):
        batch = missing[start : start + EMBED_BATCH]
        vectors = model.embed([pieces[index].text for index in batch])
        entries = [
            EmbeddingCacheEntry(key=keys[index], model=model.model, embedding=vector)
            for index, vector in zip(batch, vectors, strict=True)
        ]
        EmbeddingCacheEntry.objects.bulk_create(entries, ignore_conflicts=True)
        cached.update({entry.key: entry.embedding for entry in entries})
        _progress(document.pk, DocumentStatus.EMBEDDING, 40 + int(50 * done / batches))
    return [cached[key] for key in keys]
