"""Reads for the console and the REST API: a workspace's knowledge bases with their counts, the global ones its
plan can read, documents, and a document's text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from billing.quotas import billing_account_get, effective_plan
from core.errors import NotFound
from rag.models import Chunk, Document, DocumentStatus, KnowledgeBase
from rag.search import readable_knowledge_bases

URI_PREFIX = "kb://"

IN_PROGRESS = (DocumentStatus.UPLOADED, DocumentStatus.EXTRACTING, DocumentStatus.CHUNKING, DocumentStatus.EMBEDDING)


def _with_counts(bases: QuerySet[KnowledgeBase]) -> QuerySet[KnowledgeBase]:
    return bases.annotate(
        document_count=Count("documents"),
        ready_count=Count("documents", filter=Q(documents__status=DocumentStatus.READY)),
        failed_count=Count("documents", filter=Q(documents__status=DocumentStatus.FAILED)),
        chunk_total=Sum("documents__chunk_count"),
        stored_bytes=Sum("documents__size_bytes"),
    )


def workspace_knowledge_bases(*, workspace_id: UUID) -> QuerySet[KnowledgeBase]:
    """The workspace's own knowledge bases, with document, chunk and byte counts."""
    return _with_counts(KnowledgeBase.objects.filter(workspace_id=workspace_id)).order_by("name")


def shared_knowledge_bases(*, workspace_id: UUID) -> QuerySet[KnowledgeBase]:
    """The global knowledge bases staff published to this workspace's plan (read-only for it)."""
    tier = effective_plan(billing_account_get(workspace_id=workspace_id), timezone.now()).tier
    return _with_counts(KnowledgeBase.objects.filter(workspace__isnull=True, plan_tiers__contains=[tier])).order_by(
        "name"
    )


def knowledge_base_get(*, workspace_id: UUID, name: str, shared: bool = False) -> KnowledgeBase:
    """One of the workspace's knowledge bases by name (or, with `shared`, a global one its plan reads); NotFound
    otherwise, whether it exists elsewhere or not."""
    found = workspace_knowledge_bases(workspace_id=workspace_id).filter(name=name.lower()).first()
    if found is None and shared:
        found = shared_knowledge_bases(workspace_id=workspace_id).filter(name=name.lower()).first()
    if found is None:
        raise NotFound(f"There is no knowledge base named {name} in this workspace.")
    return found


def documents_of(
    knowledge_base: KnowledgeBase, *, status: str = "", query: str = "", tag: str = ""
) -> QuerySet[Document]:
    """A knowledge base's documents, newest first, optionally by status ("ready", "failed", "processing"), name or
    title words, and tag."""
    documents = Document.objects.filter(knowledge_base=knowledge_base).select_related("knowledge_base")
    if status == "processing":
        documents = documents.filter(status__in=IN_PROGRESS)
    elif status:
        documents = documents.filter(status=status)
    if query:
        documents = documents.filter(Q(name__icontains=query) | Q(title__icontains=query))
    if tag:
        documents = documents.filter(tags__contains=[tag])
    return documents.order_by("-created_at")


def document_get(*, knowledge_base: KnowledgeBase, document_id: Any) -> Document:
    document = Document.objects.filter(knowledge_base=knowledge_base, pk=document_id).select_related("knowledge_base")
    found = document.first()
    if found is None:
        raise NotFound(f"There is no such document in {knowledge_base.name}.")
    return found


def document_length(document: Document) -> int:
    """Characters of the document's extracted text (the end of its last chunk)."""
    return int(Chunk.objects.filter(document=document).aggregate(length=Max("end"))["length"] or 0)


@dataclass(frozen=True)
class Passage:
    """A document's text around a passage: what comes before, the passage, what comes after."""

    before: str
    passage: str
    after: str
    truncated_before: bool
    truncated_after: bool
    length: int


def document_passage(document: Document, start: Any, end: Any, *, around: int = 2_000) -> Passage:
    """The passage from `start` to `end` (a search hit's offsets; anything invalid means none) with up to `around`
    characters on each side, or the document's first `2 * around` characters when there is no passage; one read."""
    length = document_length(document)
    try:
        start = max(0, min(int(start), length))
        end = max(start, min(int(end), length))
    except (TypeError, ValueError):
        start = end = 0
    first = max(0, start - around) if end > start else 0
    last = min(length, end + around) if end > start else min(length, 2 * around)
    text = document_text(document, first, last)
    cut_start, cut_end = (start - first, end - first) if end > start else (0, 0)
    return Passage(
        before=text[:cut_start],
        passage=text[cut_start:cut_end],
        after=text[cut_end:],
        truncated_before=first > 0,
        truncated_after=last < length,
        length=length,
    )


def document_text(document: Document, start: int, end: int) -> str:
    """The document's extracted text from `start` to `end`, rebuilt from the chunks that cover it (they are exact
    slices of it, with overlaps; whitespace the chunker skipped between two chunks comes back as spaces)."""
    chunks = Chunk.objects.filter(document=document, end__gt=start, start__lt=end).order_by("start")
    text, origin = "", None
    for chunk in chunks.only("text", "start", "end"):
        origin = chunk.start if origin is None else origin
        offset = chunk.start - origin
        if chunk.end - origin > len(text):
            text = text[:offset].ljust(offset) + chunk.text
    if origin is None:
        return ""
    return text[max(start - origin, 0) : end - origin]


def document_uri(document: Document) -> str:
    return f"{URI_PREFIX}{document.knowledge_base.name}/{document.pk}"


def readable_documents(*, workspace_id: UUID, api_key: Any = None) -> QuerySet[Document]:
    """Ready documents in the knowledge bases this caller may read (the workspace's, its plan's global ones, within
    the key's scope)."""
    bases = readable_knowledge_bases(workspace_id=workspace_id, api_key=api_key)
    return Document.objects.filter(knowledge_base__in=bases, status=DocumentStatus.READY).select_related(
        "knowledge_base"
    )


def document_at(uri: str, *, workspace_id: UUID, api_key: Any = None) -> Document | None:
    """The document a kb://<knowledge-base>/<document-id> URI names, if this caller may read it."""
    if not uri.startswith(URI_PREFIX) or uri.count("/") != 3:
        return None
    base, _slash, document_id = uri[len(URI_PREFIX) :].partition("/")
    try:
        identifier = UUID(document_id)
    except ValueError:
        return None
    documents = readable_documents(workspace_id=workspace_id, api_key=api_key)
    return documents.filter(pk=identifier, knowledge_base__name=base.lower()).first()
