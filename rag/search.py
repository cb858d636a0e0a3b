"""Hybrid search over a workspace's knowledge: pgvector (cosine, HNSW) and PostgreSQL full text, fused by reciprocal
rank (k = 60), always filtered to the knowledge bases the caller may read.

- Dense: the query's embedding against chunk vectors, with `hnsw.iterative_scan = relaxed_order` so a filtered
  query still returns its candidates however few of the index's nearest rows pass the filter.
- Full text: an OR of the query's words (`plainto_tsquery` and `websearch_to_tsquery` AND every term and miss most
  natural-language questions), ranked by `ts_rank(…, 1)` (length-normalised). Ranking reads each ranked chunk's
  tsvector, and an OR of a question's words can match most of a big knowledge base, so the ranked chunks are bounded
  (see `_lexical`): those with two of the query's informative words when there are enough of them, else wider sets.
- Each list contributes 1 / (60 + rank) to a chunk's score; the best `top_k` are returned with a snippet that marks
  the matched words.

A search is five statements on one connection: the readable knowledge bases with the active model and the query's
lexemes, the HNSW settings, the dense candidates, the full-text candidates (one more when a bound falls back) and the
hits with their snippets. It is raw SQL because it is the hot path of every `search_knowledge` call: building the
same statements with the ORM cost more than running them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from pgvector import Vector

from billing.models import Metric
from billing.quotas import quota_policy, usage_consume
from monitoring.metrics import RAG_SEARCH_DURATION
from rag.embedding import embedder_for
from rag.models import DocumentStatus, KnowledgeBase
from rag.reembedding import active_embedding

RRF_K = 60
CANDIDATES = 50
# The HNSW search's candidate list (pgvector's default is 40, sized for LIMIT 10). With 50 candidates taken, a short
# list loses true neighbours at 100k chunks (bench/rag_scale.py, dense recall@10 against exact search over 200
# queries: 0.81 at 40, 0.93 at 100, 0.95 at 200, 0.97 at 250 and at 400). Not 400: pgvector's cost estimate grows
# with it, and at 10k chunks the planner then chose an exact scan that detoasts every vector (5 -> 40 ms).
EF_SEARCH = 250
MAX_TOP_K = 20
# Queries with more distinct informative words than this skip the pairs (their tsquery grows as n²).
MAX_PAIRED_LEXEMES = 24
# A lexeme in more than this share of the chunks, and more than this many, is too common to find full-text
# candidates with (it still counts in their rank): see `_lexical`.
COMMON_SHARE = 0.02
COMMON_MIN_CHUNKS = 1000
# At most this many matches are ranked when only a wide bound is left (a query of common words in a big knowledge
# base): ranking reads every ranked chunk's tsvector.
RANK_LIMIT = 5000
LEXEME_STATISTICS_SECONDS = 600
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
    """The workspace's own knowledge bases and the global ones published to its plan, narrowed by the key's scope.
    The plan is the quota policy's (cached for a few seconds, like the quotas it sets)."""
    tier = quota_policy(workspace_id=workspace_id).tier
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


@dataclass(frozen=True)
class _Scope:
    """The chunks a search may return: those of the readable knowledge bases, narrowed by the caller's filters; SQL
    over `rag_chunk c`.

    Every chunk's document is ready: ingestion writes a document's chunks in the transaction that marks it ready,
    and a ready document never goes back (only failed ones are retried), so the statements filter the chunk table
    alone and join documents only for a tag filter. That leaves PostgreSQL one plan to weigh, walking the HNSW
    index in distance order (filtering as it goes) or reading a small tenant's few chunks exactly, and the GIN index
    for the full-text matches; with the join, stale statistics on the documents (a bulk load before autovacuum) made
    it drive the search from them and compare every chunk. The hits are still read with their documents' status."""

    base_ids: list[UUID]
    document_id: UUID | None = None
    tags: tuple[str, ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        tables = "rag_chunk c"
        conditions = ["c.knowledge_base_id = ANY(%s)"]
        params: list[Any] = [self.base_ids]
        if self.document_id is not None:
            conditions.append("c.document_id = %s")
            params.append(self.document_id)
        if self.tags:
            tables += " JOIN rag_document d ON d.id = c.document_id"
            conditions.append("d.tags @> %s::jsonb")
            params.append(json.dumps(list(self.tags)))
        return f"{tables} WHERE " + " AND ".join(conditions), params


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
    bases_sql, bases_params = bases.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ARRAY({bases_sql}), (SELECT model FROM rag_activeembedding WHERE id = 1), "  # noqa: S608 - ORM SQL
            "tsvector_to_array(to_tsvector('english', %s))",
            [*bases_params, " ".join(_WORD.findall(query))[:2000]],
        )
        base_ids, active_model, lexemes = cursor.fetchone()
    if not base_ids:
        return []
    scope = _Scope(base_ids=base_ids, document_id=document_id, tags=tuple(tags or ()))
    if mode != "text":
        usage_consume(workspace_id=workspace_id, metric=Metric.AI_OPERATIONS)
        # the model every chunk's vector is of (a re-embedding may be under way)
        query_model = embedder_for(active_model or active_embedding().model)
        vector = query_model.embed([query])[0]
    dense: list[int] = []
    lexical: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if mode != "text":
            dense = _dense(cursor, scope, query_model.model, vector)
        if lexemes and mode != "dense":
            lexical = _lexical(cursor, scope, lexemes)
    scores: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = sorted(scores, key=lambda chunk_id: -scores[chunk_id])[:top_k]
    return _hits(best, scores, _any_of(lexemes))


def _dense(cursor: Any, scope: _Scope, model: str, vector: Any) -> list[int]:
    """The `CANDIDATES` nearest chunks by cosine distance, nearest first (in the caller's transaction: the HNSW
    settings are local to it)."""
    cursor.execute(
        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)",
        [str(EF_SEARCH)],
    )
    chunks, params = scope.sql()
    # model: a switch-over committed since the query was embedded leaves the dense list empty, not wrong
    cursor.execute(
        f"SELECT c.id, c.embedding <=> %s::vector AS distance FROM {chunks} AND c.model = %s "  # noqa: S608
        "ORDER BY distance LIMIT %s",
        [Vector(vector).to_text(), *params, model, CANDIDATES],
    )
    # relaxed_order may hand rows over slightly out of distance order: sort the candidates exactly
    return [chunk_id for chunk_id, _distance in sorted(cursor.fetchall(), key=lambda row: row[1])]


def _tsquery_literal(lexeme: str) -> str:
    """A lexeme quoted for tsquery input (taken as is, not parsed or stemmed again)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _any_of(lexemes: list[str]) -> str:
    """A tsquery (input syntax) matching the chunks that hold any of `lexemes`."""
    return " | ".join(_tsquery_literal(lexeme) for lexeme in lexemes)


def _at_least_two(lexemes: list[str]) -> str:
    """A tsquery (input syntax) matching the chunks that hold at least two of `lexemes` (in their text or heading):
    an OR of their pairs, which the GIN index answers from its posting lists alone. (A weight restriction such as
    `'word':B`, for a word in the heading, would make PostgreSQL recheck every chunk with any of the words.)"""
    quoted = [_tsquery_literal(lexeme) for lexeme in lexemes]
    return " | ".join(f"{a} & {b}" for i, a in enumerate(quoted) for b in quoted[i + 1 :])


_statistics_lock = threading.Lock()
_statistics: dict[str, Any] = {"read_at": None, "shares": {}, "chunks": 0.0}


def common_lexemes(lexemes: list[str]) -> set[str]:
    """Those of `lexemes` too common to find full-text candidates with: in more than COMMON_SHARE of the chunks and
    more than COMMON_MIN_CHUNKS of them (a short posting list costs little to walk and rank, however large its share
    of a small table).

    The shares are the statistics ANALYZE keeps for the tsvector column (`pg_stats.most_common_elems`: about the
    1,000 most common lexemes of the whole table; one not listed is rarer than all of them), read at most once every
    LEXEME_STATISTICS_SECONDS per process. Before the first ANALYZE no lexeme is common. The whole table, not the
    caller's knowledge bases: what a word costs is the length of its posting list in the GIN index, which holds
    every tenant's chunks."""
    if _statistics_stale():
        with _statistics_lock:
            if _statistics_stale():  # not read by another thread while this one waited
                _statistics_read()
    shares, chunks = _statistics["shares"], _statistics["chunks"]
    return {
        lexeme
        for lexeme in lexemes
        if shares.get(lexeme, 0.0) > COMMON_SHARE and shares[lexeme] * chunks > COMMON_MIN_CHUNKS
    }


def _statistics_read() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
            "FROM pg_stats s JOIN pg_class c ON c.oid = 'rag_chunk'::regclass "
            "WHERE s.schemaname = current_schema() AND s.tablename = 'rag_chunk' AND s.attname = 'search_vector'"
        )
        row = cursor.fetchone()
    # the frequencies array ends with the minimum, the maximum and the share of rows with no element
    shares = dict(zip(row[0], row[1], strict=False)) if row and row[0] else {}
    _statistics.update(read_at=time.monotonic(), shares=shares, chunks=max(row[2], 0.0) if row else 0.0)


def _statistics_stale() -> bool:
    read_at = _statistics["read_at"]
    return read_at is None or time.monotonic() - read_at >= LEXEME_STATISTICS_SECONDS


def common_lexemes_forget() -> None:
    """Read the statistics again on the next search (after an ANALYZE that should count at once)."""
    _statistics["read_at"] = None


def _lexical(cursor: Any, scope: _Scope, lexemes: list[str]) -> list[int]:
    """The best `CANDIDATES` chunks by `ts_rank(…, 1)` against the OR of the query's lexemes.

    The GIN index finds the matches unordered, and ranking reads each match's tsvector; an OR of a question's words
    can match a large share of a big knowledge base. `ts_rank` has no notion of how rare a word is: each matched word
    adds about as much as any other, so the best-ranked chunks are those holding the most distinct query words. The
    ranked set is therefore bounded, widest last, and the first that holds `CANDIDATES` chunks is ranked:

    1. the chunks with at least two of the query's *informative* lexemes, the ones not `common_lexemes`. A common
       word adds to a chunk's rank but finds no candidates: it would match thousands of chunks, and walking its
       posting list would be most of the GIN index's work (BM25 would give it a fraction of a rare word's weight);
    2. the chunks with any informative lexeme;
    3. the chunks with any of the lexemes, at most RANK_LIMIT of them (a query of common words only).

    Each set holds the one before, so a fallback loses nothing; a small knowledge base or rare words reach the third
    set with few matches, and every match is ranked there, as it would be unbounded.
    """
    common = common_lexemes(lexemes)
    informative = [lexeme for lexeme in lexemes if lexeme not in common]
    ranking = _any_of(lexemes)
    bounds = []
    if 2 <= len(informative) <= MAX_PAIRED_LEXEMES:
        bounds.append(_at_least_two(informative))
    if informative and len(informative) < len(lexemes):
        bounds.append(_any_of(informative))
    bounds.append(ranking)
    chunks, params = scope.sql()
    found: list[int] = []
    for bound in bounds:
        cursor.execute(
            f"SELECT m.id FROM (SELECT c.id, c.search_vector FROM {chunks} "  # noqa: S608
            "AND c.search_vector @@ %s::tsquery LIMIT %s) m "
            "ORDER BY ts_rank(m.search_vector, %s::tsquery, 1) DESC, m.id LIMIT %s",
            [*params, bound, RANK_LIMIT, ranking, CANDIDATES],
        )
        found = [row[0] for row in cursor.fetchall()]
        if len(found) == CANDIDATES:
            break
    return found


def _hits(ids: list[int], scores: dict[int, float], tsquery: str) -> list[Hit]:
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.document_id, d.name, d.title, k.name, c.heading_path, c.start, c.end, "
            "CASE WHEN %s = '' THEN left(c.text, 300) ELSE ts_headline('english', c.text, %s::tsquery, "
            "'StartSel=**, StopSel=**, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=\" … \"') END "
            # from the few chunk ids outwards, whatever the statistics say of the documents
            "FROM unnest(%s::bigint[]) AS hit(id) JOIN rag_chunk c ON c.id = hit.id "
            "JOIN rag_document d ON d.id = c.document_id JOIN rag_knowledgebase k ON k.id = c.knowledge_base_id "
            "WHERE d.status = %s",
            [tsquery, tsquery or "x", ids, DocumentStatus.READY.value],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    hits = []
    for chunk_id in [chunk_id for chunk_id in ids if chunk_id in rows]:  # (a document deleted meanwhile)
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
