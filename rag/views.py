"""The console's Knowledge pages: knowledge bases, drag-and-drop uploads with live progress, a document's text, and
search with links back to the passages.

Uploads are posted one file per request by the page's script (so each file gets its own progress bar and its own
error); without JavaScript the form posts every file at once and the page reloads with a message per file. A
document row polls itself (htmx) while its ingestion runs and stops when it is ready or failed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Membership, Role
from accounts.views import SignedInRequest, workspace_page
from billing.quotas import QuotaExceeded
from core.errors import NotFound, ToolportError
from rag import selectors, services
from rag.downloads import document_file_response
from rag.forms import FetchForm, KnowledgeBaseForm, SearchForm
from rag.models import Document, DocumentStatus, KnowledgeBase
from rag.search import MAX_TOP_K, search

PAGE_SIZE = 25
ERROR_STATUS = {"too_large": 413, "conflict": 409, "limit_reached": 429, "quota_exceeded": 429, "not_allowed": 403}


def _base(membership: Membership, name: str, *, shared: bool = False) -> KnowledgeBase:
    try:
        return selectors.knowledge_base_get(workspace_id=membership.workspace_id, name=name, shared=shared)
    except NotFound as error:
        raise Http404(error.message) from error


def _document(knowledge_base: KnowledgeBase, document_id: Any) -> Document:
    try:
        return selectors.document_get(knowledge_base=knowledge_base, document_id=document_id)
    except NotFound as error:
        raise Http404(error.message) from error


def _base_url(membership: Membership, knowledge_base: KnowledgeBase) -> str:
    return reverse("console:knowledge_base", args=[membership.workspace_id, knowledge_base.name])


def _htmx(request: SignedInRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _can_write(membership: Membership, knowledge_base: KnowledgeBase) -> bool:
    return knowledge_base.workspace_id == membership.workspace_id and membership.role_rank >= Role.MEMBER.rank


# --- knowledge bases -----------------------------------------------------------------------------------------------


@workspace_page
def knowledge_list(request: SignedInRequest, membership: Membership) -> HttpResponse:
    form = KnowledgeBaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            knowledge_base = services.knowledge_base_create(actor=membership, request=request, **form.cleaned_data)
        except ToolportError as error:
            field = error.details.get("field")
            form.add_error(field if isinstance(field, str) and field in form.fields else None, error.message)
        else:
            messages.success(request, f"Knowledge base {knowledge_base.name} created. Drop documents into it.")
            return redirect(_base_url(membership, knowledge_base))
    context = {
        "title": "Knowledge",
        "section": "knowledge",
        "bases": selectors.workspace_knowledge_bases(workspace_id=membership.workspace_id),
        "shared": selectors.shared_knowledge_bases(workspace_id=membership.workspace_id),
        "form": form,
        "can_manage": membership.role_rank >= Role.ADMIN.rank,
    }
    return render(request, "rag/knowledge_list.html", context, status=400 if form.errors else 200)


@workspace_page
def knowledge_base(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    base = _base(membership, name, shared=True)
    status = request.GET.get("status", "")
    if status not in {"", "ready", "failed", "processing"}:
        status = ""
    query = request.GET.get("q", "").strip()[:100]
    page = Paginator(selectors.documents_of(base, status=status, query=query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    limit, limit_owner = services.upload_limit(base)
    context = {
        "title": base.title or base.name,
        "section": "knowledge",
        "base": base,
        "page": page,
        "status": status,
        "query": query,
        "can_write": _can_write(membership, base),
        "can_manage": base.workspace_id == membership.workspace_id and membership.role_rank >= Role.ADMIN.rank,
        "fetch_form": FetchForm(),
        "upload_limit": limit,
        "upload_limit_owner": limit_owner,
        "accept": ".txt,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf",
    }
    return render(request, "rag/knowledge_base.html", context)


@require_POST
@workspace_page
def knowledge_base_delete(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    base = _base(membership, name)
    if request.POST.get("confirm", "").strip().lower() != base.name:
        messages.error(request, f"Type {base.name} to confirm deleting the knowledge base and its documents.")
        return redirect(_base_url(membership, base))
    try:
        count = services.knowledge_base_delete(actor=membership, knowledge_base=base, request=request)
    except ToolportError as error:
        messages.error(request, error.message)
        return redirect(_base_url(membership, base))
    messages.success(request, f"Knowledge base {name} deleted with its {count} document{'s' if count != 1 else ''}.")
    return redirect("console:knowledge", membership.workspace_id)


# --- documents -----------------------------------------------------------------------------------------------------


def _row(request: SignedInRequest, membership: Membership, document: Document, status: int = 200) -> HttpResponse:
    context = {
        "document": document,
        "base": document.knowledge_base,
        "can_write": _can_write(membership, document.knowledge_base),
    }
    return render(request, "rag/_document_row.html", context, status=status)


def _upload_error(request: SignedInRequest, name: str, error: ToolportError) -> HttpResponse:
    status = ERROR_STATUS.get(error.code, 400)
    return render(request, "rag/_upload_error.html", {"name": name, "message": error.message}, status=status)


@require_POST
@workspace_page
def document_upload(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    """One file from the page's script (answers the new row, or the reason it was refused), or every file of the
    plain form (answers a redirect with one message per file)."""
    base = _base(membership, name)
    files = request.FILES.getlist("files")
    tags = request.POST.get("tags", "")
    if _htmx(request) or request.headers.get("X-Upload") == "1":
        if len(files) != 1:
            return _upload_error(request, "upload", ToolportError("Send one file per request."))
        file = files[0]
        try:
            document = services.document_upload_file(
                actor=membership, knowledge_base=base, file=file, tags=tags, request=request
            )
        except ToolportError as error:
            return _upload_error(request, file.name or "file", error)
        return _row(request, membership, document, status=201)
    if not files:
        messages.error(request, "Choose one or more files to upload.")
    for file in files:
        try:
            document = services.document_upload_file(
                actor=membership, knowledge_base=base, file=file, tags=tags, request=request
            )
        except ToolportError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{document.name} uploaded; it is being processed.")
    return redirect(_base_url(membership, base))


@require_POST
@workspace_page
def document_fetch(request: SignedInRequest, membership: Membership, name: str) -> HttpResponse:
    base = _base(membership, name)
    form = FetchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the http:// or https:// URL of a document.")
        return redirect(_base_url(membership, base))
    try:
        document = services.document_fetch(
            actor=membership,
            knowledge_base=base,
            url=form.cleaned_data["url"],
            tags=services.tags_clean(form.cleaned_data["tags"]),
            request=request,
        )
    except ToolportError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{document.name} fetched from {document.source_url}; it is being processed.")
    return redirect(_base_url(membership, base))


@require_GET
@workspace_page
def document_row(request: SignedInRequest, membership: Membership, name: str, document_id: Any) -> HttpResponse:
    """A document's row, polled by the page while its ingestion runs."""
    base = _base(membership, name, shared=True)
    return _row(request, membership, _document(base, document_id))


@workspace_page
def document_detail(request: SignedInRequest, membership: Membership, name: str, document_id: Any) -> HttpResponse:
    """The document's facts and its extracted text around a passage (`start`, `end` from a search result)."""
    base = _base(membership, name, shared=True)
    document = _document(base, document_id)
    context = {
        "title": document.title or document.name,
        "section": "knowledge",
        "base": base,
        "document": document,
        "text": selectors.document_passage(document, request.GET.get("start", 0), request.GET.get("end", 0)),
        "can_write": _can_write(membership, base),
    }
    return render(request, "rag/document_detail.html", context)


@require_GET
@workspace_page
def document_download(
    request: SignedInRequest, membership: Membership, name: str, document_id: Any
) -> HttpResponseBase:
    """The original file: a presigned URL (valid 1 h) when the storage is S3, else streamed from disk."""
    document = _document(_base(membership, name, shared=True), document_id)
    try:
        return document_file_response(document)
    except NotFound as error:
        raise Http404(error.message) from error


@require_POST
@workspace_page
def document_retry(request: SignedInRequest, membership: Membership, name: str, document_id: Any) -> HttpResponse:
    base = _base(membership, name)
    document = _document(base, document_id)
    try:
        document = services.document_retry(actor=membership, document=document, request=request)
    except ToolportError as error:
        if _htmx(request):
            return _upload_error(request, document.name, error)
        messages.error(request, error.message)
    if _htmx(request):
        return _row(request, membership, document)
    return redirect(_base_url(membership, base))


@require_POST
@workspace_page
def document_delete(request: SignedInRequest, membership: Membership, name: str, document_id: Any) -> HttpResponse:
    base = _base(membership, name)
    document = _document(base, document_id)
    try:
        services.document_delete(actor=membership, document=document, request=request)
    except ToolportError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{document.name} deleted.")
    return redirect(_base_url(membership, base))


# --- search --------------------------------------------------------------------------------------------------------


@workspace_page
def knowledge_search(request: SignedInRequest, membership: Membership) -> HttpResponse:
    bases = list(selectors.workspace_knowledge_bases(workspace_id=membership.workspace_id)) + list(
        selectors.shared_knowledge_bases(workspace_id=membership.workspace_id)
    )
    form = SearchForm(request.GET or None, bases=[base.name for base in bases])
    hits, error = None, ""
    if form.is_valid():
        try:
            hits = search(
                workspace_id=membership.workspace_id,
                query=form.cleaned_data["q"],
                knowledge_base=form.cleaned_data["knowledge_base"] or None,
                tags=[form.cleaned_data["tag"]] if form.cleaned_data["tag"] else None,
                top_k=form.cleaned_data["top_k"] or 10,
            )
        except QuotaExceeded as error_:
            error = error_.message
    context = {
        "title": "Search knowledge",
        "section": "knowledge",
        "form": form,
        "hits": hits,
        "error": error,
        "has_bases": bool(bases),
        "ready": Document.objects.filter(
            knowledge_base__in=[base.pk for base in bases], status=DocumentStatus.READY
        ).exists(),
        "max_top_k": MAX_TOP_K,
    }
    return render(request, "rag/search.html", context)
