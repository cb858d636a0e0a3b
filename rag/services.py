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
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import batched
from typing import Any
from uuid import UUID

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.http import content_disposition_header

from accounts.models import ApiKey, Membership, Role, User, Workspace
from billing.models import Metric, Tier
from billing.quotas import QuotaExceeded, billing_account_get, effective_plan, quota_check, usage_consume
from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, TooLarge
from core.outbound import OutboundRefused, ResponseTooLarge, fetch
from monitoring.metrics import RAG_INGEST_CHUNKS
from rag.chunking import Piece, chunks_of
from rag.embedding import Embedder, EmbedderUnavailable
from rag.extraction import CONTENT_TYPES, ExtractionError, check, extract
from rag.models import KNOWLEDGE_BASE_NAME, Chunk, Document, DocumentStatus, KnowledgeBase
from rag.reembedding import EMBED_BATCH as EMBED_BATCH  # texts per call to the model (tests count in these)
from rag.reembedding import chunk_write_allowed, embed_cached, ingestion_embedders

logger = logging.getLogger(__name__)


# --- knowledge bases -----------------------------------------------------------------------------------------------


@transaction.atomic
def knowledge_base_create(
    *, actor: Membership, name: str, title: str = "", description: str = "", request: Any = None
) -> KnowledgeBase:
    actor.require_role(Role.ADMIN, "create knowledge bases")
    name = name.strip().lower()
    if not KNOWLEDGE_BASE_NAME.match(name):
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


@transaction.atomic
def knowledge_base_publish(*, actor: User, knowledge_base: KnowledgeBase, request: Any = None) -> KnowledgeBase:
    """Staff create or change a global knowledge base and the plan tiers that may read it (audited)."""
    if not actor.is_staff:
        raise NotAllowed("Only staff can publish global knowledge bases.")
    if knowledge_base.workspace_id is not None:
        raise InvalidInput("Staff manage global knowledge bases only; a workspace's belong to its admins.")
    knowledge_base.name = knowledge_base.name.strip().lower()
    if not KNOWLEDGE_BASE_NAME.match(knowledge_base.name):
        raise InvalidInput(
            "A knowledge base name is 1-60 lowercase letters, digits and hyphens, starting with a letter or digit.",
            details={"field": "name"},
        )
    clash = KnowledgeBase.objects.filter(workspace__isnull=True, name=knowledge_base.name).exclude(pk=knowledge_base.pk)
    if clash.exists():
        raise Conflict(f"A global knowledge base named {knowledge_base.name} exists.", details={"field": "name"})
    tiers = {choice.value for choice in Tier}
    unknown = set(knowledge_base.plan_tiers) - tiers
    if unknown:
        raise InvalidInput(f"Unknown plan tiers: {', '.join(sorted(unknown))}.", details={"field": "plan_tiers"})
    creating = knowledge_base._state.adding
    knowledge_base.save()
    audit_record(
        action="knowledge_base.create" if creating else "knowledge_base.update",
        actor=actor,
        target=knowledge_base,
        request=request,
        detail={"name": knowledge_base.name, "plan_tiers": list(knowledge_base.plan_tiers), "global": True},
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


def _storage_key(workspace_id: UUID | None, name: str) -> str:
    """`workspaces/<id>/documents/<yyyy>/<mm>/<uuid>-<name>`; staff's global knowledge bases under `global/`."""
    now = timezone.now()
    owner = f"workspaces/{workspace_id}" if workspace_id else "global"
    return f"{owner}/documents/{now:%Y}/{now:%m}/{uuid.uuid4()}-{_safe_name(name)}"


# --- documents -----------------------------------------------------------------------------------------------------

# Who adds or removes documents: a workspace member (contributor or more), an API key that is not read-only and
# whose scope covers the knowledge base, or staff for a global knowledge base.
Writer = Membership | ApiKey | User


@dataclass(frozen=True)
class _Writing:
    workspace: Workspace | None
    user: User | None
    detail: dict[str, str]


def _writing(writer: Writer, knowledge_base: KnowledgeBase, doing: str) -> _Writing:
    """Check that `writer` may change `knowledge_base`; what the audit records of them."""
    if isinstance(writer, Membership):
        writer.require_role(Role.MEMBER, doing)
        if knowledge_base.workspace_id != writer.workspace_id:
            raise NotFound("This workspace has no such knowledge base.")
        return _Writing(writer.workspace, writer.user, {})
    if isinstance(writer, ApiKey):
        if knowledge_base.workspace_id != writer.workspace_id:
            raise NotFound("This workspace has no such knowledge base.")
        if writer.read_only:
            raise NotAllowed(f"The API key {writer.name} is read-only; it cannot {doing}.")
        if writer.knowledge_bases and knowledge_base.name not in writer.knowledge_bases:
            raise NotAllowed(f"The API key {writer.name} is not scoped to the knowledge base {knowledge_base.name}.")
        return _Writing(writer.workspace, writer.created_by, {"api_key": writer.prefix})
    if writer.is_staff and knowledge_base.workspace_id is None:
        return _Writing(None, writer, {})
    raise NotAllowed(f"Only staff can {doing} in a global knowledge base.")


def upload_limit(knowledge_base: KnowledgeBase) -> tuple[int, str]:
    """The largest file this knowledge base accepts, in bytes, and whose limit it is ("the Free plan")."""
    if knowledge_base.workspace_id is None:  # staff's global knowledge bases: the site-wide cap
        return settings.RAG_GLOBAL_MAX_UPLOAD_BYTES, "site"
    plan = effective_plan(billing_account_get(workspace_id=knowledge_base.workspace_id), timezone.now())
    return plan.max_upload_bytes, plan.name if plan.name.lower().endswith("plan") else f"{plan.name} plan"


def upload_size_check(*, knowledge_base: KnowledgeBase, name: str, size: int) -> None:
    """Refuse a file over the plan's upload size (before reading it; `document_upload` checks again)."""
    limit, plan_name = upload_limit(knowledge_base)
    if size > limit:
        raise TooLarge(
            f"{name} is {size / 1_048_576:.1f} MB; the {plan_name} accepts files up to {limit / 1_048_576:.0f} MB."
            + (" Upgrade the plan for larger files." if knowledge_base.workspace_id else ""),
            details={"limit_bytes": limit},
        )


def document_upload_file(
    *, actor: Writer, knowledge_base: KnowledgeBase, file: Any, tags: Any = None, request: Any = None
) -> Document:
    """`document_upload` of an uploaded file (a Django `UploadedFile`): its size is checked before it is read."""
    name = file.name or "document"
    upload_size_check(knowledge_base=knowledge_base, name=name, size=file.size or 0)
    return document_upload(
        actor=actor, knowledge_base=knowledge_base, name=name, data=file.read(), tags=tags_clean(tags), request=request
    )


def document_upload(
    *,
    actor: Writer,
    knowledge_base: KnowledgeBase,
    name: str,
    data: bytes,
    tags: list[str] | None = None,
    source_url: str = "",
    request: Any = None,
) -> Document:
    """Accept a file into a knowledge base and queue its ingestion; raises (and stores nothing) when it is too big,
    over the storage quota, of a kind we cannot read, or already in this knowledge base."""
    writing = _writing(actor, knowledge_base, "upload documents")
    workspace_id = knowledge_base.workspace_id
    upload_size_check(knowledge_base=knowledge_base, name=name, size=len(data))
    kind = check(name, data)  # refuses wrong, damaged, encrypted and empty files before storing
    digest = hashlib.sha256(data).hexdigest()
    existing = Document.objects.filter(knowledge_base=knowledge_base, sha256=digest).first()
    if existing is not None:
        raise Conflict(
            f"{name} has the same content as {existing.name}, already in {knowledge_base.name}.",
            details={"document": str(existing.pk)},
        )
    if workspace_id is not None:
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
                tags=tags_clean(tags),
                progress=5,
            )
            audit_record(
                action="document.upload",
                actor=writing.user,
                workspace=writing.workspace,
                target=document,
                request=request,
                detail={
                    "name": document.name,
                    "knowledge_base": knowledge_base.name,
                    "bytes": len(data),
                    **({"url": source_url} if source_url else {}),
                    **writing.detail,
                },
            )
            transaction.on_commit(lambda: _enqueue(document.pk))
    except IntegrityError as error:  # the same content uploaded twice at once: keep the first
        default_storage.delete(key)
        raise Conflict(f"{name} is already in {knowledge_base.name}.") from error
    except BaseException:
        default_storage.delete(key)
        raise
    return document


def tags_clean(tags: list[str] | str | None) -> list[str]:
    """Up to 20 distinct tags of up to 50 characters; a string is split on commas."""
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned = (str(tag).strip()[:50] for tag in tags or [])
    return list(dict.fromkeys(tag for tag in cleaned if tag))[:20]


_EXTENSIONS = {"text/html": ".html", "application/pdf": ".pdf", "text/markdown": ".md", "text/plain": ".txt"}


def _name_from_response(url: str, response: httpx.Response) -> str:
    """The file name a fetched URL stands for: Content-Disposition's, else the path's last part, with an extension
    from the content type when it has none (a page at /docs/ becomes docs.html)."""
    disposition = response.headers.get("content-disposition", "")
    match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)", disposition, re.IGNORECASE)
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    name = match.group(1) if match else (path.rstrip("/").rsplit("/", 1)[-1] or urllib.parse.urlsplit(url).hostname)
    name = _safe_name(name or "document")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if "." not in name.lstrip(".") and content_type in _EXTENSIONS:
        name += _EXTENSIONS[content_type]
    return name


def document_fetch(
    *, actor: Writer, knowledge_base: KnowledgeBase, url: str, tags: list[str] | None = None, request: Any = None
) -> Document:
    """Fetch a document from a URL (through the SSRF guard: no private, loopback or metadata addresses, on every
    redirect too) and upload it; errors say what the server answered."""
    _writing(actor, knowledge_base, "upload documents")
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidInput("Give an http:// or https:// URL.", details={"field": "url"})
    limit, plan_name = upload_limit(knowledge_base)
    try:
        response, body = fetch("GET", url, max_bytes=limit, timeout=settings.RAG_FETCH_TIMEOUT_SECONDS)
    except ResponseTooLarge as error:
        raise TooLarge(
            f"The document at {url} is larger than {limit / 1_048_576:.0f} MB, the most the {plan_name} accepts.",
            details={"field": "url", "limit_bytes": limit},
        ) from error
    except OutboundRefused as error:
        raise InvalidInput(error.message, details={"field": "url"}) from error
    except httpx.TimeoutException as error:
        raise InvalidInput(f"{url} did not answer within {settings.RAG_FETCH_TIMEOUT_SECONDS:g} s.") from error
    except httpx.HTTPError as error:
        raise InvalidInput(f"Could not fetch {url}: {error}.", details={"field": "url"}) from error
    if response.status_code >= 400:
        raise InvalidInput(f"{url} answered {response.status_code} {response.reason_phrase}.", details={"field": "url"})
    return document_upload(
        actor=actor,
        knowledge_base=knowledge_base,
        name=_name_from_response(str(response.url), response),
        data=body,
        tags=tags,
        source_url=url[:2000],
        request=request,
    )


def _enqueue(document_id: UUID) -> None:
    from rag.tasks import document_ingest_task

    document_ingest_task.delay(str(document_id))


def document_retry(*, actor: Writer, document: Document, request: Any = None) -> Document:
    """Queue a failed document's ingestion again (after its cause is fixed: a quota raised, a provider back)."""
    writing = _writing(actor, document.knowledge_base, "retry ingestion")
    if document.status != DocumentStatus.FAILED:
        raise Conflict(f"{document.name} has not failed; only failed documents can be retried.")
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(status=DocumentStatus.UPLOADED, progress=5, error="")
        audit_record(
            action="document.retry",
            actor=writing.user,
            workspace=writing.workspace,
            target=document,
            request=request,
            detail={"name": document.name, **writing.detail},
        )
        transaction.on_commit(lambda: _enqueue(document.pk))
    document.refresh_from_db()
    return document


@transaction.atomic
def document_delete(*, actor: Writer, document: Document, request: Any = None) -> None:
    """The document, its chunks and its file go (the file after the commit)."""
    writing = _writing(actor, document.knowledge_base, "delete documents")
    key = str(document.file.name)
    audit_record(
        action="document.delete",
        actor=writing.user,
        workspace=writing.workspace,
        target=document,
        request=request,
        detail={"name": document.name, **writing.detail},
    )
    document.delete()
    transaction.on_commit(lambda: _delete_files([key]))


@transaction.atomic
def knowledge_base_delete(*, actor: Membership | User, knowledge_base: KnowledgeBase, request: Any = None) -> int:
    """A knowledge base with its documents, chunks and files (the files after the commit); returns how many
    documents went. Workspace admins and owners for their own, staff for global ones."""
    if isinstance(actor, Membership):
        actor.require_role(Role.ADMIN, "delete knowledge bases")
        if knowledge_base.workspace_id != actor.workspace_id:
            raise NotFound("This workspace has no such knowledge base.")
        workspace, user = actor.workspace, actor.user
    elif actor.is_staff and knowledge_base.workspace_id is None:
        workspace, user = None, actor
    else:
        raise NotAllowed("Only staff can delete a global knowledge base.")
    keys = [str(name) for name in knowledge_base.documents.values_list("file", flat=True)]
    audit_record(
        action="knowledge_base.delete",
        actor=user,
        workspace=workspace,
        target=knowledge_base,
        request=request,
        detail={"name": knowledge_base.name, "documents": len(keys)},
    )
    knowledge_base.delete()
    transaction.on_commit(lambda: _delete_files(keys))
    return len(keys)


def _delete_files(keys: list[str]) -> None:
    """Remove stored files after their rows are gone; one that fails is left to the orphan sweep, never raised."""
    for key in keys:
        try:
            default_storage.delete(key)
        except Exception:  # the rows are already deleted; the orphan sweep removes what is left
            logger.warning("Could not delete the stored file %s; the orphan sweep will remove it.", key, exc_info=True)


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
        pieces = chunks_of(extracted, ingestion_embedders()[0])
    except (ExtractionError, EmbedderUnavailable) as error:
        _fail(document.pk, getattr(error, "message", str(error)))
        return DocumentStatus.FAILED
    except FileNotFoundError:
        _fail(document.pk, "The stored file is missing; delete the document and upload it again.")
        return DocumentStatus.FAILED
    for _attempt in range(3):  # the active model can switch over while the document is embedded: embed again
        try:
            model, following = ingestion_embedders()
            vectors = _embed(document, pieces, model)
            next_vectors = _embed_following(pieces, following)
        except (QuotaExceeded, EmbedderUnavailable) as error:
            _fail(document.pk, getattr(error, "message", str(error)))
            return DocumentStatus.FAILED
        with transaction.atomic():
            if not chunk_write_allowed(model.model):
                continue
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
                    model_next=following.model if following and next_vectors else "",
                    embedding_next=next_vectors[position] if next_vectors else None,
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
        RAG_INGEST_CHUNKS.inc(len(pieces))
        logger.info("Ingested document %s: %d chunks.", document.pk, len(pieces))
        return DocumentStatus.READY
    _fail(document.pk, "The embedding model changed three times while this document was embedded; retry it.")
    return DocumentStatus.FAILED


def _embed(document: Document, pieces: list[Piece], model: Embedder) -> list[Any]:
    """Vectors for the pieces: from the cache where the same text was embedded by the same model, the rest in
    batches. The quota is checked for all of them before any work; each batch is counted as AI operations once it is
    embedded and cached, so a worker killed mid-document and redelivered charges every chunk once (the batches it
    finished come from the cache the second time)."""
    misses = charged = 0

    def meter(missing: int) -> None:
        nonlocal misses
        misses = missing
        if misses and document.workspace_id is not None:
            quota_check(workspace_id=document.workspace_id, metric=Metric.AI_OPERATIONS, amount=misses)
        _progress(document.pk, DocumentStatus.EMBEDDING, 40)

    def advance(done: int, batches: int) -> None:
        nonlocal charged
        embedded = min(misses, done * EMBED_BATCH)
        if embedded > charged and document.workspace_id is not None:
            usage_consume(workspace_id=document.workspace_id, metric=Metric.AI_OPERATIONS, amount=embedded - charged)
        charged = embedded
        _progress(document.pk, DocumentStatus.EMBEDDING, 40 + int(50 * done / batches))

    return embed_cached(model, [piece.text for piece in pieces], before=meter, after_batch=advance)[0]


def _embed_following(pieces: list[Piece], following: Embedder | None) -> list[Any] | None:
    """The configured model's vectors while a re-embedding is due (not metered: the operator changed the model);
    None when there is none or it fails (the re-embedding then does these chunks)."""
    if following is None:
        return None
    try:
        return embed_cached(following, [piece.text for piece in pieces])[0]
    except EmbedderUnavailable as error:
        logger.warning("no %s vectors for the new chunks yet: %s", following.model, error.message)
        return None


# --- stored files --------------------------------------------------------------------------------------------------

DOWNLOAD_URL_SECONDS = 3600
_DOCUMENT_FILE = re.compile(r"^(?:workspaces/[^/]+|global)/documents/")


def _s3_storage() -> Any:
    """The default storage when it is django-storages' S3 backend, else None; boto3 is imported only when the
    settings chose S3 (it takes a second to import)."""
    storage_class = default_storage.__class__  # sets the lazy default storage up, importing its backend
    s3 = sys.modules.get("storages.backends.s3")
    return default_storage if s3 is not None and issubclass(storage_class, s3.S3Storage) else None


def document_download_url(document: Document) -> str | None:
    """A URL that downloads the document's file for the next hour, signed by the object store (S3); None when the
    storage keeps files private on its own disk, and the caller streams the file through an authorised view."""
    storage = _s3_storage()
    if storage is None:
        return None
    # An attachment under its uploaded name: an HTML document is saved, never rendered on the bucket's origin.
    disposition = content_disposition_header(True, document.name)
    return str(
        storage.url(
            str(document.file.name),
            parameters={"ResponseContentDisposition": disposition},
            expire=DOWNLOAD_URL_SECONDS,
        )
    )


def orphaned_files_delete(*, grace: timedelta | None = None) -> int:
    """Remove stored document files that no document references (a file whose removal failed after its row was
    deleted, or whose row never committed), once older than `grace` (RAG_ORPHANED_FILE_GRACE_SECONDS, an hour) so an
    upload between storing its file and committing its row is never touched. Returns how many files went."""
    if grace is None:
        grace = timedelta(seconds=settings.RAG_ORPHANED_FILE_GRACE_SECONDS)
    cutoff = timezone.now() - grace
    removed = 0
    old = (name for name, modified in _document_files() if modified < cutoff)
    for names in batched(old, 500):
        referenced = set(Document.objects.filter(file__in=names).values_list("file", flat=True))
        for name in names:
            if name not in referenced:
                default_storage.delete(name)
                removed += 1
    if removed:
        logger.info("Removed %d orphaned document files.", removed)
    return removed


def _document_files() -> Iterator[tuple[str, datetime]]:
    """Every stored document file and when it was last written: a paged listing of the keys on S3 (no request per
    file), a directory walk on other storages."""
    s3 = _s3_storage()
    if s3 is not None:
        location = f"{s3.location.strip('/')}/" if s3.location else ""
        pages = s3.connection.meta.client.get_paginator("list_objects_v2")
        for top in ("workspaces/", "global/"):
            for page in pages.paginate(Bucket=s3.bucket_name, Prefix=location + top):
                for entry in page.get("Contents", ()):
                    name = entry["Key"][len(location) :]
                    if _DOCUMENT_FILE.match(name):
                        yield name, entry["LastModified"]
        return
    workspaces = _listdir("workspaces")[0]
    for top in [f"workspaces/{workspace}/documents" for workspace in workspaces] + ["global/documents"]:
        yield from _walk(top)


def _listdir(directory: str) -> tuple[list[str], list[str]]:
    try:
        return default_storage.listdir(directory)
    except FileNotFoundError:
        return [], []


def _walk(directory: str) -> Iterator[tuple[str, datetime]]:
    directories, files = _listdir(directory)
    for file in files:
        name = f"{directory}/{file}"
        yield name, default_storage.get_modified_time(name)
    for child in directories:
        yield from _walk(f"{directory}/{child}")
