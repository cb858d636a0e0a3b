"""Hybrid search over a workspace's knowledge: pgvector (cosine, HNSW) and PostgreSQL full text, fused by reciprocal
rank (k = 60), always filtered to the knowledge bases the caller may read.

- Dense: the query's embedding against chunk vectors, with `hnsw.iterative_scan = relaxed_order` so a filtered
  query still returns its candidates however few of the index's nearest rows pass the filter.
- Full text: an OR of the query's words (`plainto_tsquery` and `websearch_to_tsquery` AND every term and miss most
  natural-language questions), ranked by `ts_rank(…, 1)` (length-normalised).
- Each list contributes 1 / (60 + rank) to a chunk's score; the best `top_k` are returned with a snippet that marks
  the matched words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from pgvector.django import CosineDistance

from billing.models import Metric
from billing.quotas import billing_account_get, effective_plan, usage_consume
from monitoring.metrics import RAG_SEARCH_DURATION
from rag.models import Chunk, DocumentStatus, KnowledgeBase
from rag.reembedding import active_embedder

RRF_K = 60
CANDIDATES = 50
# The HNSW search's candidate list (pgvector's default is 40, sized for LIMIT 10). With 50 candidates taken, a list of
# 40-100 loses true neighbours at 100k chunks (bench/rag_scale.py: dense recall@10 0.81 at 40, 0.92 at 100, 0.97 at
# 200), for about 1 ms more per query at 200.
EF_SEARCH = 200
MAX_TOP_K = 20
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: UUID
    document: str
    knowledge_base: str
    heading_path: str
    snippet: str
    score: float
    start: int
    end: int

    @property
    def uri(self) -> str:
        return f"kb://{self.knowledge_base}/{self.document_id}"


def readable_knowledge_bases(*, workspace_id: UUID, api_key: Any = None) -> QuerySet[KnowledgeBase]:
    """The workspace's own knowledge bases and the global ones published to its plan, narrowed by the key's scope."""
    tier = effective_plan(billing_account_get(workspace_id=workspace_id), timezone.now()).tier
    readable = KnowledgeBase.objects.filter(
        Q(workspace_id=workspace_id) | Q(workspace__isnull=True, plan_tiers__contains=[tier])
    )
    scope = tuple(getattr(api_key, "knowledge_bases", ()) or ())
    if scope:
        readable = readable.filter(name__in=scope)
    return readable


def or_query(text: str) -> str:
    """The query's words joined with OR, for to_tsquery (only letters and digits reach it)."""
    return " | ".join(dict.fromkeys(word.lower() for word in _WORD.findall(text)))[:2000]


@RAG_SEARCH_DURATION.time()
def search(
    *,
    workspace_id: UUID,
    query: str,
    api_key: Any = None,
    knowledge_base: str | None = None,
    document_id: UUID | None = None,
    tags: list[str] | None = None,
    top_k: int = 5,
    mode: Literal["hybrid", "dense", "text"] = "hybrid",
) -> list[Hit]:
    """The best chunks for `query` among what this caller may read; counts one AI operation (the query's
    embedding), refused with QuotaExceeded before any work when none is left. `mode` keeps one of the two rankings
    alone (dense: no full text; text: no embedding, so nothing is counted), for the retrieval benchmark."""
    top_k = max(1, min(int(top_k), MAX_TOP_K))
    query = query.strip()
    if not query:
        return []
    bases = readable_knowledge_bases(workspace_id=workspace_id, api_key=api_key)
    if knowledge_base:
        bases = bases.filter(name=knowledge_base.lower())
    base_ids = list(bases.values_list("pk", flat=True))
    if not base_ids:
        return []
    if mode != "text":
        usage_consume(workspace_id=workspace_id, metric=Metric.AI_OPERATIONS)
        query_model = active_embedder()  # the model every chunk's vector is of (a re-embedding may be under way)
        vector = query_model.embed([query])[0]
    chunks = Chunk.objects.filter(knowledge_base_id__in=base_ids, document__status=DocumentStatus.READY)
    if document_id is not None:
        chunks = chunks.filter(document_id=document_id)
    for tag in tags or []:
        chunks = chunks.filter(document__tags__contains=[tag])
    # The filters join the chunk's own columns and its document's row (no `id IN (subquery)`: that hashes every
    # readable chunk first), so PostgreSQL can walk the HNSW index in distance order and filter as it goes, or, for a
    # small tenant, read its few chunks exactly; and the GIN index gives the full-text matches.
    words = or_query(query)
    dense: list[int] = []
    lexical: list[int] = []
    with transaction.atomic():
        if mode != "text":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cursor.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
            # model: a switch-over committed since the query was embedded leaves the dense list empty, not wrong
            nearest = chunks.filter(model=query_model.model).order_by(CosineDistance("embedding", vector))
            dense = list(nearest.values_list("id", flat=True)[:CANDIDATES])
        if words and mode != "dense":
            tsquery = SearchQuery(words, search_type="raw", config="english")
            ranked = chunks.filter(search_vector=tsquery).annotate(
                rank=SearchRank(F("search_vector"), tsquery, normalization=1)
            )
            lexical = list(ranked.order_by("-rank").values_list("id", flat=True)[:CANDIDATES])
    scores: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = sorted(scores, key=lambda chunk_id: -scores[chunk_id])[:top_k]
    return _hits(best, scores, words)


def _hits(ids: list[int], scores: dict[int, float], words: str) -> list[Hit]:
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.document_id, d.name, d.title, k.name, c.heading_path, c.start, c.end, "
            "CASE WHEN %s = '' THEN left(c.text, 300) ELSE ts_headline('english', c.text, to_tsquery('english', %s), "
            "'StartSel=**, StopSel=**, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=\" … \"') END "
            "FROM rag_chunk c JOIN rag_document d ON d.id = c.document_id JOIN rag_knowledgebase k "
            "ON k.id = c.knowledge_base_id WHERE c.id = ANY(%s)",
            [words, words or "x", ids],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    hits = []
    for chunk_id in ids:
        _id, document_id, name, title, base, heading_path, start, end, snippet = rows[chunk_id]
        hits.append(
            Hit(
                chunk_id=chunk_id,
                document_id=document_id,
                document=title or name,
                knowledge_base=base,
                heading_path=heading_path,
                snippet=snippet,
                score=round(scores[chunk_id], 6),
                start=start,
                end=end,
            )
        )
    return hits
