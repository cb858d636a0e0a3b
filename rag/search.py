"""Hybrid search over a workspace's knowledge: pgvector (cosine, HNSW) and PostgreSQL full text, fused by reciprocal
rank (k = 60), always filtered to the knowledge bases the caller may read.

- Dense: the query's embedding against chunk vectors, with `hnsw.iterative_scan = relaxed_order` so a filtered
  query still returns its candidates however few of the index's nearest rows pass the filter.
- Full text: an OR of the query's words (`plainto_tsquery` and `websearch_to_tsquery` AND every term and miss most
  natural-language questions), ranked by `ts_rank(…, 1)` (length-normalised). Ranking reads each ranked chunk's
  tsvector, and an OR of a question's words can match most of a big knowledge base, so the ranked chunks are bounded
  (see `_Statement.lexical`): those with two of the query's informative words when there are enough of them, else
  wider sets.
- Each list contributes 1 / (60 + rank) to a chunk's score; the best `top_k` are returned with a snippet that marks
  the matched words.

A search is two statements on one connection: the readable knowledge bases with the active model and the query's
lexemes, then (after the query's embedding) the rankings, their fusion and the hits with their snippets in one
statement (`_Statement`), preceded in the same query string by the HNSW settings. It is raw SQL because it is the
hot path of every `search_knowledge` call: building the same statements with the ORM cost more than running them.
Only constants and SQL built here are interpolated into it (the `noqa: S608`s); every value is a parameter.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import numpy as np
from django.db import connection
from django.db.models import Q, QuerySet

from billing.models import Metric
from billing.quotas import quota_policy, usage_consume
from monitoring.metrics import RAG_SEARCH_DURATION
from rag.embedding import embedder_for
from rag.models import KNOWLEDGE_BASE_NAME, DocumentStatus, KnowledgeBase
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
# candidates with (it still counts in their rank): see `_Statement.lexical`.
COMMON_SHARE = 0.02
COMMON_MIN_CHUNKS = 1000
# At most this many matches of a full-text bound are ranked (in practice the widest, for a query of common words in a
# big knowledge base): ranking reads every ranked chunk's tsvector.
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
    return _readable(workspace_id, quota_policy(workspace_id=workspace_id).tier, _key_scope(api_key))


def _readable(workspace_id: UUID, tier: str, scope: tuple[str, ...]) -> QuerySet[KnowledgeBase]:
    readable = KnowledgeBase.objects.filter(
        Q(workspace_id=workspace_id) | Q(workspace__isnull=True, plan_tiers__contains=[tier])
    )
    if scope:
        readable = readable.filter(name__in=scope)
    return readable


def _key_scope(api_key: Any) -> tuple[str, ...]:
    return tuple(getattr(api_key, "knowledge_bases", ()) or ())


@functools.lru_cache(maxsize=4096)
def _readable_ids_sql(
    workspace_id: UUID, tier: str, scope: tuple[str, ...], knowledge_base: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The SQL (and its parameters) of `readable_knowledge_bases`' ids, narrowed to `knowledge_base` if given. A
    function of its arguments alone, so compiled once for each: building and compiling the queryset on every search
    cost about as much as running it."""
    bases = _readable(workspace_id, tier, scope)
    if knowledge_base:
        bases = bases.filter(name=knowledge_base)
    sql, params = bases.values("pk").query.sql_with_params()
    return sql, tuple(params)


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
    knowledge_base = knowledge_base.lower() if knowledge_base else None
    if not query or (knowledge_base is not None and not KNOWLEDGE_BASE_NAME.match(knowledge_base)):
        return []  # (no knowledge base has such a name: nor does it reach the cache of readable-bases SQL)
    bases_sql, bases_params = _readable_ids_sql(
        workspace_id,
        quota_policy(workspace_id=workspace_id).tier,
        _key_scope(api_key),
        knowledge_base,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ARRAY({bases_sql}), (SELECT model FROM rag_activeembedding WHERE id = 1), "  # noqa: S608 - ORM SQL
            "tsvector_to_array(to_tsvector('english', %s))",
            [*bases_params, " ".join(_WORD.findall(query))[:2000]],
        )
        base_ids, active_model, lexemes = cursor.fetchone()
    if not base_ids or (mode == "text" and not lexemes):
        return []
    statement = _Statement(_Scope(base_ids=base_ids, document_id=document_id, tags=tuple(tags or ())))
    if mode != "text":
        usage_consume(workspace_id=workspace_id, metric=Metric.AI_OPERATIONS)
        # the model every chunk's vector is of (a re-embedding may be under way)
        query_model = embedder_for(active_model or active_embedding().model)
        statement.dense(query_model.model, query_model.embed([query])[0])
    if lexemes and mode != "dense":
        statement.lexical(lexemes)
    sql, params = statement.sql(top_k=top_k, tsquery=_any_of(lexemes))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if not cursor.nextset():  # past the settings' row
            raise RuntimeError("The search statement returned no rows of its own after its settings.")
        rows = cursor.fetchall()
    return [
        Hit(
            chunk_id=chunk_id,
            document_id=document_id,
            document=title or name,
            knowledge_base=base,
            heading_path=heading_path,
            snippet=snippet,
            score=round(score, 6),
            start=start,
            end=end,
        )
        for chunk_id, document_id, name, title, base, heading_path, start, end, snippet, score in rows
    ]


# Set for the statement that follows them in the same query string (one implicit transaction): the HNSW walk's
# candidate list, and an iterative scan so that a filtered walk goes on until it has found its LIMIT. Two statements
# in one string need client-side binding, Django's default with psycopg 3 (`server_side_binding` would refuse them).
SETTINGS_SQL = "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)"


class _Statement:
    """The search as one statement after SETTINGS_SQL: each ranking a CTE of (chunk id, rank), fused by reciprocal
    rank, the best `top_k` read with their documents and snippets.

    One statement, not one per step: on a loaded machine every statement's round trip, parse and plan, and the
    wake-ups of both processes, cost about as much as the work of the smaller steps. The CTEs are MATERIALIZED, so
    each is planned on its own (as the statements were) and run once. Called inside a transaction, the settings last
    until it ends (they only steer HNSW scans), and an error in the statement aborts it, as any failed statement
    does: search runs in autocommit everywhere it is called."""

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope
        self.ctes: list[str] = []
        self.params: list[Any] = []
        self.rankings: list[str] = []

    def dense(self, model: str, vector: Any) -> None:
        """The CANDIDATES nearest chunks by cosine distance. relaxed_order may hand rows over slightly out of
        distance order: they are ranked by their exact distance. `model`: a switch-over committed since the query
        was embedded leaves the list empty, not wrong."""
        chunks, params = self.scope.sql()
        self.ctes.append(
            "dense AS MATERIALIZED (SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM ("  # noqa: S608
            f"SELECT c.id, c.embedding <=> %s::vector AS distance FROM {chunks} AND c.model = %s "
            "ORDER BY distance LIMIT %s) nearest)"
        )
        self.params += [_vector_literal(vector), *params, model, CANDIDATES]
        self.rankings.append("SELECT id, rank, 0 AS list FROM dense")

    def lexical(self, lexemes: list[str]) -> None:
        """The best CANDIDATES chunks by `ts_rank(…, 1)` against the OR of the query's lexemes.

        The GIN index finds the matches unordered, and ranking reads each match's tsvector; an OR of a question's
        words can match a large share of a big knowledge base. `ts_rank` has no notion of how rare a word is: each
        matched word adds about as much as any other, so the best-ranked chunks are those holding the most distinct
        query words. The ranked set is therefore bounded, widest last, and the first that holds CANDIDATES chunks is
        ranked:

        1. the chunks with at least two of the query's *informative* lexemes, the ones not `common_lexemes`. A common
           word adds to a chunk's rank but finds no candidates: it would match thousands of chunks, and walking its
           posting list would be most of the GIN index's work (BM25 would give it a fraction of a rare word's
           weight);
        2. the chunks with any informative lexeme;
        3. the chunks with any of the lexemes, at most RANK_LIMIT of them (a query of common words only).

        Each set holds the one before, so a fallback loses nothing; a small knowledge base or rare words reach the
        third set with few matches, and every match is ranked there, as it would be unbounded. Each bound is a CTE
        `rankedN` of its best CANDIDATES; `level` counts them in order (a CASE stops at the first that is full), and
        the rankings of the bounds it did not pick are never run (their branches are behind one-time filters)."""
        common = common_lexemes(lexemes)
        informative = [lexeme for lexeme in lexemes if lexeme not in common]
        ranking = _any_of(lexemes)
        bounds = []
        if 2 <= len(informative) <= MAX_PAIRED_LEXEMES:
            bounds.append(_at_least_two(informative))
        if informative and len(informative) < len(lexemes):
            bounds.append(_any_of(informative))
        bounds.append(ranking)
        chunks, params = self.scope.sql()
        for number, bound in enumerate(bounds):
            self.ctes.append(
                f"ranked{number} AS MATERIALIZED (SELECT m.id, ts_rank(m.search_vector, %s::tsquery, 1) AS score "  # noqa: S608
                f"FROM (SELECT c.id, c.search_vector FROM {chunks} AND c.search_vector @@ %s::tsquery LIMIT %s) m "
                "ORDER BY score DESC, m.id LIMIT %s)"
            )
            self.params += [ranking, *params, bound, RANK_LIMIT, CANDIDATES]
        if len(bounds) == 1:
            picked = "SELECT id, score FROM ranked0"
        else:
            full = " ".join(
                f"WHEN (SELECT count(*) FROM ranked{number}) = %s THEN {number}"  # noqa: S608
                for number in range(len(bounds) - 1)
            )
            self.ctes.append(f"level AS MATERIALIZED (SELECT CASE {full} ELSE {len(bounds) - 1} END AS number)")
            self.params += [CANDIDATES] * (len(bounds) - 1)
            picked = " UNION ALL ".join(
                f"SELECT id, score FROM ranked{number} WHERE (SELECT number FROM level) = {number}"  # noqa: S608
                for number in range(len(bounds))
            )
        self.ctes.append(
            "lexical AS MATERIALIZED (SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank "  # noqa: S608
            f"FROM ({picked}) picked)"
        )
        self.rankings.append("SELECT id, rank, 1 AS list FROM lexical")

    def sql(self, *, top_k: int, tsquery: str) -> tuple[str, list[Any]]:
        """SETTINGS_SQL and the statement, with their parameters. Equal scores keep the dense list's order, then
        the full-text list's."""
        fused = (
            f"fused AS MATERIALIZED (SELECT id, sum(1.0::float8 / ({RRF_K} + rank)) AS score, "  # noqa: S608
            "min(rank) FILTER (WHERE list = 0) AS dense_rank, min(rank) FILTER (WHERE list = 1) AS text_rank "
            f"FROM ({' UNION ALL '.join(self.rankings)}) lists GROUP BY id "
            "ORDER BY score DESC, dense_rank NULLS LAST, text_rank LIMIT %s)"
        )
        sql = (
            f"{SETTINGS_SQL}; WITH {', '.join([*self.ctes, fused])} "  # noqa: S608
            "SELECT c.id, c.document_id, d.name, d.title, k.name, c.heading_path, c.start, c.end, "
            "CASE WHEN %s = '' THEN left(c.text, 300) ELSE ts_headline('english', c.text, %s::tsquery, "
            "'StartSel=**, StopSel=**, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=\" … \"') END, "
            "f.score FROM fused f JOIN rag_chunk c ON c.id = f.id JOIN rag_document d ON d.id = c.document_id "
            "JOIN rag_knowledgebase k ON k.id = c.knowledge_base_id "
            "WHERE d.status = %s ORDER BY f.score DESC, f.dense_rank NULLS LAST, f.text_rank"
        )
        params = [str(EF_SEARCH), *self.params, top_k, tsquery, tsquery or "x", DocumentStatus.READY.value]
        return sql, params


def _vector_literal(vector: Any) -> str:
    """The vector in pgvector's text form, with nine significant digits: a float32 reads back exactly, and the text
    is shorter and quicker to write than `pgvector.Vector.to_text`'s (a float64's seventeen)."""
    return "[" + ",".join(map("{:.9g}".format, np.asarray(vector, dtype=np.float32).tolist())) + "]"


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
