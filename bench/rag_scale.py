"""Benchmark: hybrid search latency and the dense part's recall at 10k and 100k chunks, and ingestion throughput
against the embedder's raw rate.

Run: make bench   (or: .venv/bin/python bench/rag_scale.py [--sizes 10000,100000] [--queries 200] [--ingest-chunks 256])

Search at scale. One knowledge base of synthetic chunks (50 per document) is loaded to each size in `--sizes`:
- vectors: real MiniLM embeddings of 500 "topic" sentences (8 words each from the tokenizer's vocabulary) are the
  centres; a chunk's vector is its topic's, plus a third of another topic's, plus Gaussian noise of norm ~0.5,
  L2-normalised (cosine to its centre ~0.85, to another chunk of its topic ~0.7). Uniform random vectors are not
  used: they have no neighbours to find (every distance is alike) and no real embedding looks like them;
- text: its topic's words a few times among 150 words drawn from a Zipf distribution (probability ∝ 1/rank) over
  the same vocabulary, ranked in a random order fixed for the run, so the OR-ed full-text query matches many more
  chunks than the relevant ones (as in real text: see bench/README.md for Cranfield's share);
- queries: 5 of a topic sentence's words plus one word drawn from the same Zipf distribution (the same ranking as
  the text's, so a common word of the query is as common in the chunks), embedded by the real model inside
  `search`.
The rows go in by binary COPY into a staging table, then one INSERT … SELECT computes the tsvectors as ingestion
does; the product's HNSW and GIN indexes (their definitions read from the database, as the migration made them) are
dropped for the load and rebuilt with those same definitions, then VACUUM ANALYZE (what autovacuum would reach).

Each query goes through the real `rag.search.search` (hybrid, top 10) after a warm-up. It prints p50/p95 of the
whole call, of its two database statements (timed by a Django execute wrapper), of the query's embedding alone, and
of the whole call without the embedding. After the timed searches, each search statement is replayed under EXPLAIN
ANALYZE for where its time goes (planning, the dense and full-text CTEs, the fusion, the hits with their snippets),
with the shares of the chunks the OR-ed query matches and search ranked. Recall@10 of the dense part: the first 10
chunks of search's dense list (`mode="dense"`: the same CTE, settings and iterative HNSW scan as the hybrid search)
against an exact search (`enable_indexscan = off`: a sequential scan and sort), at search's own `hnsw.ef_search` and
at others.

Ingestion: `--ingest-chunks` worth of generated Markdown documents (~64 chunks each) are uploaded and ingested
with `document_ingest` (extract, chunk, embed in batches of EMBED_BATCH, write chunks and tsvectors, progress
updates); the same chunk texts, in the same per-document batches, are embedded by `embedder().embed` alone,
in turn with each document's ingestion (alternating which goes first, so both see the same load on a shared
machine), and the pipeline's chunks/s is compared with the raw rate.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rag_setup import ROOT, bench_workspace, print_header, rag_environment

TOPICS = 500
TOPIC_WORDS = 8
CHUNK_WORDS = 150
CHUNKS_PER_DOCUMENT = 50
RECALL_EF_SEARCHES = (100, 200, 300, 400)  # besides search's own: how dense recall moves with the HNSW candidate list
INDEXES = ("rag_chunk_embedding_hnsw", "rag_chunk_search_gin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts to measure search at ('' to skip)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-chunks", type=int, default=256, help="chunks to ingest (0 to skip)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database and its chunks (for --reuse)")
    parser.add_argument("--reuse", action="store_true", help="search the chunks a --keep run left (loads only more)")
    parser.add_argument("--database", default="toolport_bench_rag_scale", help="the throw-away database's name")
    arguments = parser.parse_args()
    with rag_environment(arguments.database, keep=arguments.keep, reuse=arguments.reuse):
        print_header()
        rng = np.random.default_rng(arguments.seed)
        vocabulary = _vocabulary()
        if arguments.ingest_chunks:
            ingestion(rng, vocabulary, arguments.ingest_chunks)
        sizes = [int(size) for size in arguments.sizes.split(",") if size.strip()]
        if sizes:
            search_at_scale(rng, vocabulary, sizes, arguments.queries)


def _vocabulary() -> list[str]:
    """Whole English words from the vendored tokenizer's vocabulary (no word pieces, digits or short words)."""
    data = json.loads((ROOT / "rag" / "embedding" / "minilm" / "tokenizer.json").read_text())
    return sorted(word for word in data["model"]["vocab"] if word.isascii() and word.isalpha() and len(word) >= 4)


def _zipf(rng: np.random.Generator, size: int) -> np.ndarray:
    """Probabilities ∝ 1/rank over `size` items (the usual shape of word frequencies)."""
    weights = 1.0 / np.arange(1, size + 1)
    return weights / weights.sum()


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


# --- ingestion throughput --------------------------------------------------------------------------------------------


def ingestion(rng: np.random.Generator, vocabulary: list[str], chunks: int) -> None:
    from rag.chunking import chunks_of
    from rag.embedding import embedder
    from rag.extraction import extract
    from rag.models import Chunk
    from rag.services import EMBED_BATCH, document_ingest, document_upload, knowledge_base_create

    member = bench_workspace("bench-rag-ingest")
    base = knowledge_base_create(actor=member, name="ingest")
    model = embedder()
    order = rng.permutation(len(vocabulary))
    probabilities = _zipf(rng, len(vocabulary))
    run = uuid.uuid4().hex[:8]  # texts no earlier run embedded: the embedding cache must not help the pipeline

    def paragraph() -> str:
        words = [vocabulary[order[index]] for index in rng.choice(len(vocabulary), 60, p=probabilities)]
        return " ".join(words).capitalize() + "."

    files = []  # ~64 chunks each (42 sections of 240 words), one full batch
    for number in range(max(1, round(chunks / 64))):
        sections = [f"# Manual {run} part {number}\n"]
        for section in range(42):
            sections.append(f"## Section {section}\n\n" + "\n\n".join(paragraph() for _ in range(4)) + "\n")
        files.append((f"manual-{run}-{number}.md", "\n".join(sections).encode()))
    # Per document, the pipeline's own batches (EMBED_BATCH texts at a time) of the texts the chunker makes.
    batches = [
        [texts[start : start + EMBED_BATCH] for start in range(0, len(texts), EMBED_BATCH)]
        for texts in ([piece.text for piece in chunks_of(extract(name, data)[1], model)] for name, data in files)
    ]
    total = sum(len(batch) for document in batches for batch in document)
    model.embed(batches[0][0])  # warm up: the ONNX session's first run
    # Other work on a shared machine makes both rates drift: each document is embedded alone and ingested in turn
    # (in alternating order), so both measures see the same conditions.
    raw = pipeline = 0.0
    for number, ((name, data), document_batches) in enumerate(zip(files, batches, strict=True)):
        for step in ("raw", "pipeline") if number % 2 == 0 else ("pipeline", "raw"):
            start = time.perf_counter()
            if step == "raw":
                for batch in document_batches:
                    model.embed(batch)
                raw += time.perf_counter() - start
            else:
                document = document_upload(actor=member, knowledge_base=base, name=name, data=data)
                if document_ingest(document.pk) != "ready":
                    sys.exit(f"{name} did not ingest")
                pipeline += time.perf_counter() - start
    written = Chunk.objects.filter(knowledge_base=base).count()
    if written != total:
        sys.exit(f"the pipeline wrote {written} chunks, the chunker alone makes {total}")
    print(f"\ningestion: {len(files)} Markdown documents, {total} chunks, batches of up to {EMBED_BATCH} per document")
    print(f"  embedder alone (embed, same texts and batches): {total / raw:6.1f} chunks/s")
    print(
        f"  pipeline (document_upload + document_ingest):   {total / pipeline:6.1f} chunks/s = "
        f"{raw / pipeline:.0%} of the embedder's rate (target >= 90 %)"
    )


# --- search at scale -------------------------------------------------------------------------------------------------


@contextmanager
def _statements(log: list[tuple[str, Any, float]]) -> Iterator[None]:
    """Record every SQL statement Django runs in this block, with its parameters and time."""
    from django.db import connection

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            log.append((sql, params, time.perf_counter() - start))

    with connection.execute_wrapper(wrapper):
        yield


@contextmanager
def _embedding_time(model: Any, spent: list[float]) -> Iterator[None]:
    """Record the time of every `model.embed` call in this block (search embeds the query with this instance)."""
    embed = model.embed

    def timed(texts: list[str]) -> Any:
        start = time.perf_counter()
        try:
            return embed(texts)
        finally:
            spent.append(time.perf_counter() - start)

    model.embed = timed
    try:
        yield
    finally:
        del model.embed


def search_at_scale(rng: np.random.Generator, vocabulary: list[str], sizes: list[int], queries: int) -> None:
    from django.db import connection

    from accounts.models import Membership
    from rag.embedding import embedder
    from rag.models import KnowledgeBase
    from rag.search import common_lexemes_forget, search

    base = KnowledgeBase.objects.filter(workspace__name="bench-rag-scale", name="scale").first()
    if base is None:
        member = bench_workspace("bench-rag-scale")
        base = KnowledgeBase.objects.create(workspace=member.workspace, name="scale")
    else:  # --reuse: the chunks a --keep run loaded (the same seed draws the same topics and queries)
        member = Membership.objects.get(workspace__knowledge_bases=base)
    model = embedder()
    topic_words = [list(rng.choice(vocabulary, TOPIC_WORDS, replace=False)) for _ in range(TOPICS)]
    # One frequency ranking for the queries and every load (each used to draw its own, so a query's common word
    # was a random word of the text, and the 10k and 100k chunks had different common words).
    ranked = [vocabulary[index] for index in rng.permutation(len(vocabulary))]
    centres = model.embed([" ".join(words) for words in topic_words])
    probabilities = _zipf(rng, len(ranked))
    asked = []
    for _ in range(queries + 20):
        topic = int(rng.integers(TOPICS))
        words = list(rng.choice(topic_words[topic], 5, replace=False))
        words.append(ranked[rng.choice(len(ranked), p=probabilities)])
        asked.append(" ".join(words))
    loaded = base.chunk_set.count()
    for size in sizes:
        if size < loaded:
            print(f"\n{size:,} chunks: skipped, the reused knowledge base holds {loaded:,}")
            continue
        started = time.perf_counter()
        if size > loaded:
            _load(rng, member, base, model.model, ranked, topic_words, centres, loaded, size)
            loaded = size
            # the statistics of the loaded size (search reads them every few minutes: a run is quicker)
            common_lexemes_forget()
        print(f"\n{size:,} chunks: loaded and indexed in {time.perf_counter() - started:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass))", [INDEXES[0]])
            index_size = cursor.fetchone()[0]
            cursor.execute("SELECT pg_size_pretty(pg_table_size('rag_chunk')), current_setting('shared_buffers')")
            table_size, shared_buffers = cursor.fetchone()
            print(f"  HNSW index {index_size}, table with TOAST {table_size}, shared_buffers {shared_buffers}")
        for query in asked[:20]:  # warm up: caches, plans, the index's pages
            search(workspace_id=member.workspace_id, query=query, top_k=10)
        totals, database, embeddings, logs = [], [], [], []
        for query in asked[20:]:
            log: list[tuple[str, Any, float]] = []
            spent: list[float] = []
            with _statements(log), _embedding_time(model, spent):
                start = time.perf_counter()
                search(workspace_id=member.workspace_id, query=query, top_k=10)
                totals.append(time.perf_counter() - start)
            embeddings.append(sum(spent))  # the query's embedding, inside this call
            database.append(sum(seconds for _sql, _params, seconds in log))
            logs.append(log)
        # Everything else after the timing: the replays, the shares and the exact searches of the recall read many
        # chunks, and would evict the indexes from the buffers between two timed searches.
        parts = [_parts(log) for log in logs]
        matched = [_or_share(query, base) for query in asked[20:]]  # share of the chunks the OR-ed query matches
        recalls = [_recall(member.workspace_id, base, model, query, RECALL_EF_SEARCHES) for query in asked[20:]]
        without = [total - embedding for total, embedding in zip(totals, embeddings, strict=True)]
        print(f"  {queries} hybrid searches (rag.search.search, top 10), after 20 warm-up queries:")
        print(f"    whole call, query embedding included   {_percentiles(totals)}")
        print(f"    whole call minus the query's embedding {_percentiles(without)}")
        print(f"    its two SQL statements                 {_percentiles(database)}")
        print(f"    its query embedding (embed)             {_percentiles(embeddings)}")
        print("  the search statement replayed under EXPLAIN ANALYZE (its timing adds to each part):")
        for name in ("planning", "dense", "full text", "fusion", "hits and snippets"):
            print(f"    {name:36s}   {_percentiles([part[name] for part in parts])}")
        print(f"  the OR-ed full-text query matches {statistics.fmean(matched):.1%} of the chunks on average")
        ranked_share = statistics.fmean(part["ranked"] for part in parts) / loaded
        print(f"  search ranked {ranked_share:.2%} of the chunks on average (ts_rank)")
        own = [recall[0] for recall in recalls]
        print(
            f"  dense recall@10 against exact search: {statistics.fmean(own):.3f} (min {min(own):.1f}, "
            f"{sum(recall < 0.5 for recall in own)} queries under 0.5)"
        )
        for column, ef_search in enumerate(RECALL_EF_SEARCHES, start=1):
            replayed = [recall[column] for recall in recalls]
            print(f"    with hnsw.ef_search = {ef_search}: {statistics.fmean(replayed):.3f}")
    _show_plan(asked[-1], member.workspace_id)


def _load(
    rng: np.random.Generator,
    member: Any,
    base: Any,
    model: str,
    ranked: list[str],
    topic_words: list[list[str]],
    centres: np.ndarray,
    start: int,
    end: int,
) -> None:
    """Chunks `start`..`end` of the synthetic collection: documents, then chunks by COPY, the indexes rebuilt."""
    from django.db import connection
    from pgvector.psycopg import register_vector

    from rag.models import Document, DocumentStatus

    documents = [
        Document(
            workspace_id=member.workspace_id,
            knowledge_base=base,
            name=f"synthetic-{number}.md",
            title=f"Synthetic {number}",
            content_type="text/markdown",
            size_bytes=CHUNK_WORDS * 8 * CHUNKS_PER_DOCUMENT,
            sha256=f"{number:064x}",
            file=f"bench/synthetic-{number}.md",
            status=DocumentStatus.READY,
            progress=100,
            chunk_count=CHUNKS_PER_DOCUMENT,
        )
        for number in range(start // CHUNKS_PER_DOCUMENT, -(-end // CHUNKS_PER_DOCUMENT))
    ]
    Document.objects.bulk_create(documents, batch_size=1000)
    count = end - start
    topics = rng.integers(TOPICS, size=count)
    others = rng.integers(TOPICS, size=count)
    noise = rng.standard_normal((count, centres.shape[1])).astype(np.float32) * (0.5 / np.sqrt(centres.shape[1]))
    vectors = centres[topics] + centres[others] / 3 + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    background = rng.choice(len(ranked), (count, CHUNK_WORDS), p=_zipf(rng, len(ranked)))
    indexes: dict[str, str] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(INDEXES)])
        indexes = dict(cursor.fetchall())
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_chunk "
            "(document_id uuid, position integer, text text, embedding vector(384))"
        )
        cursor.execute("TRUNCATE bench_chunk")
        with cursor.copy(
            "COPY bench_chunk (document_id, position, text, embedding) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["uuid", "int4", "text", "vector"])
            for row in range(count):
                number = start + row
                words = [ranked[index] for index in background[row]]
                for offset, word in zip(rng.integers(CHUNK_WORDS, size=6), topic_words[topics[row]][:6], strict=True):
                    words[offset] = word
                copy.write_row(
                    (
                        documents[(number // CHUNKS_PER_DOCUMENT) - start // CHUNKS_PER_DOCUMENT].pk,
                        number % CHUNKS_PER_DOCUMENT,
                        " ".join(words),
                        vectors[row],
                    )
                )
        for name in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            "INSERT INTO rag_chunk (workspace_id, knowledge_base_id, document_id, position, text, heading_path, "
            'start, "end", token_count, model, embedding, search_vector) '
            "SELECT %s, %s, document_id, position, text, '', 0, length(text), 200, %s, embedding, "
            "setweight(to_tsvector('english', ''), 'B') || to_tsvector('english', text) FROM bench_chunk",
            [member.workspace_id, base.pk, model],
        )
        cursor.execute("SET maintenance_work_mem = '1GB'")  # the HNSW graph is built in memory
        for definition in indexes.values():
            cursor.execute(definition)
        cursor.execute("RESET maintenance_work_mem")
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE rag_chunk")
        cursor.execute("ANALYZE rag_document")  # what autovacuum does soon after a bulk load


def _explained(log: list[tuple[str, Any, float]], options: str) -> Any:
    """EXPLAIN `options` of the search statement in `log`, after its settings (as search ran it)."""
    from django.db import connection, transaction

    from rag.search import SETTINGS_SQL

    sql, params, _seconds = next(entry for entry in log if entry[0].startswith(SETTINGS_SQL))
    settings = SETTINGS_SQL.count("%s")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SETTINGS_SQL, params[:settings])
        cursor.execute(f"EXPLAIN ({options}) " + sql[len(SETTINGS_SQL) + 2 :], params[settings:])
        return cursor.fetchall()


def _parts(log: list[tuple[str, Any, float]]) -> dict[str, float]:
    """Where the search statement's time goes, replayed under EXPLAIN ANALYZE: planning, the dense and full-text
    CTEs, the fusion (the `fused` CTE less the two lists it reads) and the rest (the hits, their snippets); seconds.
    `ranked`: the chunks it ranked with ts_rank."""
    plan = _explained(log, "ANALYZE, FORMAT JSON")[0][0][0]
    ctes: dict[str, float] = {}
    ranked = 0.0

    def walk(node: dict[str, Any], bound: bool) -> None:
        nonlocal ranked
        name = node.get("Subplan Name", "")
        if name.startswith("CTE "):
            ctes[name[4:]] = node["Actual Total Time"] * node["Actual Loops"] / 1000
        bound = bound or name.startswith("CTE ranked")
        if bound and node.get("Alias") == "m":  # the matches of a bound, before its ranking
            ranked += node["Actual Rows"] * node["Actual Loops"]
        for child in node.get("Plans", []):
            walk(child, bound)

    walk(plan["Plan"], False)
    dense, text = ctes.get("dense", 0.0), ctes.get("lexical", 0.0)
    return {
        "planning": plan["Planning Time"] / 1000,
        "dense": dense,
        "full text": text,
        "fusion": ctes["fused"] - dense - text,
        "hits and snippets": plan["Execution Time"] / 1000 - ctes["fused"],
        "ranked": ranked,
    }


def _recall(workspace_id: Any, base: Any, model: Any, query: str, ef_searches: tuple[int, ...] = ()) -> list[float]:
    """Overlap of the first 10 chunks of search's dense list (`mode="dense"`, as its hybrid search ranks them) in the
    knowledge base with those of an exact search of it (no index); then the same with each of `ef_searches` as
    search's hnsw.ef_search."""
    from django.db import connection, transaction
    from pgvector import Vector

    from rag import search as search_module

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(
            "SELECT id FROM rag_chunk WHERE knowledge_base_id = %s AND model = %s "
            "ORDER BY embedding <=> %s::vector LIMIT 10",
            [base.pk, model.model, Vector(model.embed([query])[0]).to_text()],
        )
        truth = {row[0] for row in cursor.fetchall()}
    own = search_module.EF_SEARCH
    overlaps = []
    try:
        for ef_search in (own, *ef_searches):
            search_module.EF_SEARCH = ef_search
            hits = search_module.search(
                workspace_id=workspace_id, query=query, knowledge_base=base.name, top_k=10, mode="dense"
            )
            overlaps.append(len({hit.chunk_id for hit in hits} & truth) / max(1, len(truth)))
    finally:
        search_module.EF_SEARCH = own
    return overlaps


def _or_share(query: str, base: Any) -> float:
    """The share of the knowledge base's chunks that hold any of the query's words (what an unbounded ranking would
    read)."""
    from django.db import connection

    from rag.search import or_query

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE search_vector @@ to_tsquery('english', %s))::float / count(*) "
            "FROM rag_chunk WHERE knowledge_base_id = %s",
            [or_query(query), base.pk],
        )
        return cursor.fetchone()[0]


def _show_plan(query: str, workspace_id: Any) -> None:
    """The plan of the search statement at the last size, so a reader sees the HNSW and GIN indexes are used."""
    from rag.search import search

    log: list[tuple[str, Any, float]] = []
    with _statements(log):
        search(workspace_id=workspace_id, query=query, top_k=10)
    print("\nplan of the search statement (vectors shortened):")
    for (line,) in _explained(log, "ANALYZE, COSTS OFF"):
        print(f"  {re.sub(r"'\[[^']{60,}\]'", "'[…]'", line)}")


if __name__ == "__main__":
    main()
