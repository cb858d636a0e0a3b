"""The knowledge REST API: knowledge bases, documents (multipart upload, or a URL Toolport fetches through its SSRF
guard), their progress, retry, download and delete, and search.

A signed-in person acts through their membership (the console's rules). An API key acts for its workspace within
its scopes: it reads and searches only the knowledge bases it is scoped to (all of them when unscoped), and it can
upload, retry and delete documents there unless it is read-only; creating and deleting knowledge bases needs a
person.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.models import ApiKey, Membership
from accounts.permissions import IsSignedInOrKey, is_key
from core.errors import InvalidInput, NotAllowed, NotFound
from rag import selectors, services
from rag.downloads import document_file_response
from rag.models import Document, KnowledgeBase
from rag.search import MAX_TOP_K, readable_knowledge_bases, search


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    shared = serializers.SerializerMethodField(help_text="A global knowledge base published to this plan (read-only).")
    documents = serializers.IntegerField(source="document_count", read_only=True)
    ready = serializers.IntegerField(source="ready_count", read_only=True)
    failed = serializers.IntegerField(source="failed_count", read_only=True)
    chunks = serializers.SerializerMethodField()
    bytes = serializers.SerializerMethodField()

    class Meta:
        model = KnowledgeBase
        fields = ("name", "title", "description", "shared", "documents", "ready", "failed", "chunks", "bytes")

    def get_shared(self, base: KnowledgeBase) -> bool:
        return base.workspace_id is None

    def get_chunks(self, base: KnowledgeBase) -> int:
        return int(getattr(base, "chunk_total", 0) or 0)

    def get_bytes(self, base: KnowledgeBase) -> int:
        return int(getattr(base, "stored_bytes", 0) or 0)


class KnowledgeBaseCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DocumentSerializer(serializers.ModelSerializer):
    uri = serializers.SerializerMethodField()
    knowledge_base = serializers.CharField(source="knowledge_base.name", read_only=True)

    class Meta:
        model = Document
        fields = (
            "id",
            "uri",
            "knowledge_base",
            "name",
            "title",
            "content_type",
            "size_bytes",
            "sha256",
            "source_url",
            "tags",
            "status",
            "progress",
            "error",
            "chunk_count",
            "created_at",
            "updated_at",
        )

    def get_uri(self, document: Document) -> str:
        return f"kb://{document.knowledge_base.name}/{document.pk}"


class DocumentAddSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="The document (multipart): txt, md, html or pdf.")
    url = serializers.URLField(required=False, max_length=2000, help_text="Or a public URL for Toolport to fetch.")
    tags = serializers.CharField(required=False, allow_blank=True, default="", help_text="Comma-separated.")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("file")) == bool(data.get("url")):
            raise serializers.ValidationError("Send either a file (multipart) or a url, not both.")
        return data


class SearchSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    knowledge_base = serializers.CharField(required=False, allow_blank=True, default="")
    document = serializers.UUIDField(required=False, allow_null=True, default=None)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
    top_k = serializers.IntegerField(min_value=1, max_value=MAX_TOP_K, default=5)


class _Caller:
    """Who calls: a membership (signed in) or an API key (loaded as its model, for the services)."""

    def __init__(self, request: Request, workspace_id: str) -> None:
        self.key: ApiKey | None = None
        self.membership: Membership | None = None
        if is_key(request):
            workspace = account_selectors.workspace_get_for_key(
                workspace_id=workspace_id, key_workspace_id=request.auth.workspace_id
            )
            self.key = ApiKey.objects.select_related("workspace", "created_by").get(pk=request.auth.id)
            self.workspace_id = workspace.pk
        else:
            self.membership = account_selectors.membership_get(user=request.user, workspace_id=workspace_id)
            self.workspace_id = self.membership.workspace_id

    @property
    def writer(self) -> services.Writer:
        writer = self.key or self.membership
        assert writer is not None
        return writer

    def person(self, doing: str) -> Membership:
        if self.membership is None:
            raise NotAllowed(f"API keys cannot {doing}; sign in to the console instead.")
        return self.membership

    def readable(self) -> QuerySet[KnowledgeBase]:
        return readable_knowledge_bases(workspace_id=self.workspace_id, api_key=self.key)

    def base(self, name: str) -> KnowledgeBase:
        base = self.readable().filter(name=name.lower()).first()
        if base is None:
            raise NotFound(f"There is no knowledge base named {name} that this caller can read.")
        return base

    def document(self, name: str, document_id: UUID) -> Document:
        return selectors.document_get(knowledge_base=self.base(name), document_id=document_id)


class _View(APIView):
    permission_classes = [IsSignedInOrKey]


class KnowledgeBaseListView(_View):
    @extend_schema(summary="The knowledge bases this caller can read", responses=KnowledgeBaseSerializer(many=True))
    def get(self, request: Request, workspace_id: str) -> Response:
        caller = _Caller(request, workspace_id)
        names = caller.readable().values_list("name", flat=True)
        own = selectors.workspace_knowledge_bases(workspace_id=caller.workspace_id).filter(name__in=names)
        shared = selectors.shared_knowledge_bases(workspace_id=caller.workspace_id).filter(name__in=names)
        return Response(KnowledgeBaseSerializer([*own, *shared], many=True).data)

    @extend_schema(
        summary="Create a knowledge base (admins and owners, signed in)",
        request=KnowledgeBaseCreateSerializer,
        responses={201: KnowledgeBaseSerializer},
    )
    def post(self, request: Request, workspace_id: str) -> Response:
        member = _Caller(request, workspace_id).person("create knowledge bases")
        serializer = KnowledgeBaseCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        base = services.knowledge_base_create(actor=member, request=request, **serializer.validated_data)
        created = selectors.knowledge_base_get(workspace_id=member.workspace_id, name=base.name)
        return Response(KnowledgeBaseSerializer(created).data, status=201)


class KnowledgeBaseDetailView(_View):
    @extend_schema(summary="One knowledge base", responses=KnowledgeBaseSerializer)
    def get(self, request: Request, workspace_id: str, name: str) -> Response:
        caller = _Caller(request, workspace_id)
        caller.base(name)  # readable by this caller
        base = selectors.knowledge_base_get(workspace_id=caller.workspace_id, name=name, shared=True)
        return Response(KnowledgeBaseSerializer(base).data)

    @extend_schema(summary="Delete a knowledge base with its documents and files (admins and owners)")
    def delete(self, request: Request, workspace_id: str, name: str) -> Response:
        member = _Caller(request, workspace_id).person("delete knowledge bases")
        base = selectors.knowledge_base_get(workspace_id=member.workspace_id, name=name)
        services.knowledge_base_delete(actor=member, knowledge_base=base, request=request)
        return Response(status=204)


class DocumentListView(_View):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        summary="A knowledge base's documents, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=["ready", "failed", "processing"], required=False),
            OpenApiParameter("tag", str, required=False),
        ],
        responses=DocumentSerializer(many=True),
    )
    def get(self, request: Request, workspace_id: str, name: str) -> Response:
        caller = _Caller(request, workspace_id)
        status = request.query_params.get("status", "")
        if status not in {"", "ready", "failed", "processing"}:
            raise InvalidInput("status is one of ready, failed or processing.", details={"field": "status"})
        documents = selectors.documents_of(caller.base(name), status=status, tag=request.query_params.get("tag", ""))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(documents, request, view=self)
        return paginator.get_paginated_response(DocumentSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a document: a file (multipart) or a URL; ingestion runs in the background (poll the document)",
        request={"multipart/form-data": DocumentAddSerializer, "application/json": DocumentAddSerializer},
        responses={201: DocumentSerializer},
    )
    def post(self, request: Request, workspace_id: str, name: str) -> Response:
        caller = _Caller(request, workspace_id)
        base = caller.base(name)
        serializer = DocumentAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tags = services.tags_clean(serializer.validated_data["tags"])
        if serializer.validated_data.get("url"):
            document = services.document_fetch(
                actor=caller.writer,
                knowledge_base=base,
                url=serializer.validated_data["url"],
                tags=tags,
                request=request,
            )
        else:
            document = services.document_upload_file(
                actor=caller.writer,
                knowledge_base=base,
                file=serializer.validated_data["file"],
                tags=tags,
                request=request,
            )
        return Response(DocumentSerializer(document).data, status=201)


class DocumentDetailView(_View):
    @extend_schema(summary="One document: status, progress (0-100), error, chunk count", responses=DocumentSerializer)
    def get(self, request: Request, workspace_id: str, name: str, document_id: UUID) -> Response:
        return Response(DocumentSerializer(_Caller(request, workspace_id).document(name, document_id)).data)

    @extend_schema(summary="Delete a document with its chunks and file")
    def delete(self, request: Request, workspace_id: str, name: str, document_id: UUID) -> Response:
        caller = _Caller(request, workspace_id)
        services.document_delete(actor=caller.writer, document=caller.document(name, document_id), request=request)
        return Response(status=204)


class DocumentRetryView(_View):
    @extend_schema(summary="Ingest a failed document again", request=None, responses=DocumentSerializer)
    def post(self, request: Request, workspace_id: str, name: str, document_id: UUID) -> Response:
        caller = _Caller(request, workspace_id)
        document = services.document_retry(
            actor=caller.writer, document=caller.document(name, document_id), request=request
        )
        return Response(DocumentSerializer(document).data)


class DocumentDownloadView(_View):
    @extend_schema(summary="The original file (a redirect to a URL valid 1 h when files are on S3)", responses=bytes)
    def get(self, request: Request, workspace_id: str, name: str, document_id: UUID) -> Any:
        return document_file_response(_Caller(request, workspace_id).document(name, document_id))


class SearchView(_View):
    @extend_schema(
        summary="Hybrid search (meaning + keywords) over the knowledge bases this caller can read; one AI operation",
        request=SearchSerializer,
        responses=inline_serializer(
            "SearchResults",
            {
                "results": inline_serializer(
                    "SearchHit",
                    {
                        "uri": serializers.CharField(),
                        "document": serializers.CharField(),
                        "knowledge_base": serializers.CharField(),
                        "section": serializers.CharField(),
                        "snippet": serializers.CharField(),
                        "score": serializers.FloatField(),
                        "start": serializers.IntegerField(),
                        "end": serializers.IntegerField(),
                    },
                    many=True,
                )
            },
        ),
    )
    def post(self, request: Request, workspace_id: str) -> Response:
        caller = _Caller(request, workspace_id)
        serializer = SearchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["knowledge_base"]:
            caller.base(data["knowledge_base"])  # a clear 404 for a name this caller cannot read
        hits = search(
            workspace_id=caller.workspace_id,
            query=data["query"],
            api_key=caller.key,
            knowledge_base=data["knowledge_base"] or None,
            document_id=data["document"],
            tags=data["tags"] or None,
            top_k=data["top_k"],
        )
        return Response({"results": [hit.as_result() for hit in hits]})
