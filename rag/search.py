"""Hybrid search over a workspace's knowledge: pgvector (cosine, HNSW) and PostgreSQL full text, fused by reciprocal
rank (k = 60), always filtered to the knowledge bases the caller may read.

- Dense: the query's embedding against chunk vectors, with `hnsw.iterative_scan = relaxed_order` so a filtered
  query still returns its candidates however few of the index's nearest rows pass the filter.
- Full text: an OR of the query's words (`plainto_tsquery` and `websearch_to_tsquery` AND every term and miss most
  natural-language questions), ranked by `ts_rank(…, 1)` (length-normalised). Ranking reads every ranked chunk's
  tsvector, and an OR of a question's words matches a large share of a big knowledge base, so only the chunks that
  contain at least two of the query's words are ranked when there are enough of them (`CANDIDATES`); otherwise every
  chunk that contains any of them, as before.
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
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from pgvector.django import CosineDistance

from billing.models import Metric
from billing.quotas import billing_account_get, effective_plan, usage_consume
from monitoring.metrics import RAG_SEARCH_DURATION
from rag.models import Chunk, DocumentStatus, KnowledgeBase
from rag.reembedding import active_embedder

RRF_K = 60
CANDIDATES = 50
# The HNSW search's candidate list (pgvector's default is 40, sized for LIMIT 10). With 50 candidates taken, a short
# list loses true neighbours at 100k chunks (bench/rag_scale.py, dense recall@10 against exact search: 0.81 at 40,
# 0.93 at 100, 0.95 at 200, 0.97 at 400 over 200 queries). Not 400: pgvector's cost estimate grows with it, and at
# 10k chunks the planner then chose an exact scan that detoasts every vector (dense statement p50 5 -> 40 ms).
EF_SEARCH = 200
MAX_TOP_K = 20
# Queries with more distinct words than this rank every chunk with any of them (the pairs' tsquery grows as n²).
MAX_PAIRED_LEXEMES = 24
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

    def as_result(self) -> dict[str, Any]:
        """The hit as the MCP tool and the REST API return it."""
        return {
            "uri": self.uri,
            "document": self.document,
            "knowledge_base": self.knowledge_base,
            "section": self.heading_path,
            "snippet": self.snippet,
            "score": self.score,
            "start": self.start,
            "end": self.end,
        }


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
            nearest = (
                chunks.filter(model=query_model.model)
                .annotate(distance=CosineDistance("embedding", vector))
                .order_by("distance")
            )
            # relaxed_order may hand rows over slightly out of distance order: sort the candidates exactly
            found = list(nearest.values_list("id", "distance")[:CANDIDATES])
            dense = [chunk_id for chunk_id, _distance in sorted(found, key=lambda row: row[1])]
        if words and mode != "dense":
            lexical = _lexical(chunks, words)
    scores: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = sorted(scores, key=lambda chunk_id: -scores[chunk_id])[:top_k]
    return _hits(best, scores, words)


def _lexemes(words: str) -> list[str]:
    """The query's distinct lexemes as the english configuration makes them (stemmed, stopwords dropped), as the
    chunks' tsvectors hold them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector('english', %s))", [words.replace("|", " ")])
        return list(cursor.fetchone()[0])


def _tsquery_literal(lexeme: str) -> str:
    """A lexeme quoted for tsquery input (taken as is, not parsed or stemmed again)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _at_least_two(lexemes: list[str]) -> str:
    """A tsquery (input syntax) matching the chunks that hold at least two of `lexemes` (in their text or heading):
    an OR of their pairs, which the GIN index answers from its posting lists alone. (A weight restriction such as
    `'word':B`, for a word in the heading, would make PostgreSQL recheck every chunk with any of the words.)"""
    quoted = [_tsquery_literal(lexeme) for lexeme in lexemes]
    return " | ".join(f"{a} & {b}" for i, a in enumerate(quoted) for b in quoted[i + 1 :])


def _lexical(chunks: QuerySet[Chunk], words: str) -> list[int]:
    """The best `CANDIDATES` chunks by `ts_rank(…, 1)` against the OR of the query's words.

    The GIN index finds the matches unordered, and ranking reads each match's tsvector: with an OR of a question's
    words that is most of the time (a word like "flow" or "account" can be in a large share of a big knowledge
    base). Each matched word adds to the rank, so a chunk with two of the words nearly always outranks a chunk with
    one (the exceptions: a very short chunk, or one whose single word is in its heading, weighted B): when at least
    `CANDIDATES` chunks hold two of them, only those are ranked; otherwise (a short query, a small knowledge base,
    rare words) every match is, exactly as before. The ranking itself is unchanged.
    """
    tsquery = SearchQuery(words, search_type="raw", config="english")
    rank = SearchRank(F("search_vector"), tsquery, normalization=1)
    lexemes = _lexemes(words)
    if 2 <= len(lexemes) <= MAX_PAIRED_LEXEMES:
        two = RawSQL("rag_chunk.search_vector @@ %s::tsquery", [_at_least_two(lexemes)], output_field=BooleanField())
        strong = list(
            chunks.filter(two).annotate(rank=rank).order_by("-rank").values_list("id", flat=True)[:CANDIDATES]
        )
        if len(strong) == CANDIDATES:
            return strong
    ranked = chunks.filter(search_vector=tsquery).annotate(rank=rank)
    return list(ranked.order_by("-rank").values_list("id", flat=True)[:CANDIDATES])


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
