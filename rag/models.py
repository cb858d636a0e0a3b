"""Knowledge: knowledge bases, their documents, and the chunks search runs over.

Every row carries its workspace (chunks too, so search filters on one indexed column). A knowledge base without a
workspace is global: staff publish it, and the plans it lists can read it.
"""

import re
import uuid

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Lower
from pgvector.django import HnswIndex, VectorField

from core.models import TimeStampedModel

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2; an HTTP provider is asked for vectors of this size
# A knowledge base's name (in kb:// URIs and the MCP tools' arguments): lowercase letters, digits and hyphens.
KNOWLEDGE_BASE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\Z")


class KnowledgeBase(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, null=True, blank=True, related_name="knowledge_bases"
    )
    name = models.SlugField(max_length=60, help_text="Its name in kb:// URIs and in the MCP tools' arguments.")
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    # Global knowledge bases only: the plan tiers whose workspaces may read it (empty: none).
    plan_tiers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="rag_kb_unique_name_per_workspace"),
            models.UniqueConstraint(
                Lower("name"), condition=models.Q(workspace__isnull=True), name="rag_kb_unique_global_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DocumentStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    EXTRACTING = "extracting", "Extracting text"
    CHUNKING = "chunking", "Chunking"
    EMBEDDING = "embedding", "Embedding"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Document(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, null=True, blank=True)
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=255, help_text="The uploaded file's name, or the last part of its URL.")
    title = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(max_length=500)
    source_url = models.URLField(max_length=2000, blank=True)
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=DocumentStatus.choices, default=DocumentStatus.UPLOADED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100, for the console's progress bar.")
    error = models.CharField(max_length=500, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=("knowledge_base", "sha256"), name="rag_document_unique_content_per_kb")
        ]
        indexes = [models.Index(fields=("workspace", "status"))]

    def __str__(self) -> str:
        return self.title or self.name


class Chunk(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, null=True, blank=True)
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE)
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField(help_text="Order of the chunk in its document, from 0.")
    text = models.TextField()
    heading_path = models.CharField(max_length=500, blank=True, help_text="Section headings above it: A > B > C.")
    start = models.PositiveIntegerField(help_text="Offset of the chunk in the document's extracted text.")
    end = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    model = models.CharField(max_length=100, help_text="The embedding model that made `embedding`.")
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    # While a re-embedding runs (rag/reembedding.py): the vector of the model being switched to, swapped into
    # `embedding` for every chunk in one transaction. Not indexed: nothing searches it.
    model_next = models.CharField(max_length=100, blank=True, default="", db_default="")
    embedding_next = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    search_vector = SearchVectorField()

    class Meta:
        ordering = ("document", "position")
        constraints = [models.UniqueConstraint(fields=("document", "position"), name="rag_chunk_unique_position")]
        indexes = [
            HnswIndex(
                name="rag_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="rag_chunk_search_gin"),
            models.Index(fields=("workspace", "knowledge_base")),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"


class ActiveEmbedding(models.Model):
    """The one embedding model search and ingestion use (one row), and the model a re-embedding is filling in.

    Chunk vectors are all of `model`: a query is embedded with it, so it is only ever compared with its own kind."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    model = models.CharField(max_length=100)
    next_model = models.CharField(max_length=100, blank=True, help_text="Being re-embedded into; empty when none.")
    switched_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="rag_active_embedding_singleton")]

    def __str__(self) -> str:
        return self.model + (f" → {self.next_model}" if self.next_model else "")


class EmbeddingCacheEntry(models.Model):
    """A vector by sha256(model + text): re-ingesting or re-chunking the same text embeds it once."""

    key = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=100)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.model}:{self.key[:12]}"
