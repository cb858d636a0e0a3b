"""Benchmark: retrieval quality of knowledge search (nDCG@10, recall@10) for dense, full-text and hybrid, on a
TREC-format test collection ingested through the product's own pipeline.

Run: make bench   (or: .venv/bin/python bench/rag_quality.py [--collection ../shared/data/cranfield] [--limit N])

The collection folder holds the documents (TREC XML: `<doc><docno>…</docno>…<text>…</text></doc>`, in one file or
several), the topics (`<top><num>…</num><title>…</title></top>`) and the qrels (`query 0 docno relevance`); the files
are recognised by their content. Cranfield's qrels number the queries by their position in the topics file, not by
`<num>` (its README says so): `--topic-ids position` (the default) follows that, `--topic-ids num` uses `<num>`.

It starts the embedded PostgreSQL and a private Redis, makes a throw-away database and a workspace on the unlimited
plan, creates a knowledge base with `knowledge_base_create`, uploads each document as a text file with
`document_upload` and ingests it with `document_ingest` (what the Celery task runs: extraction, chunking on the
model's tokenizer, embedding, chunks + vectors + full text in one transaction). Then every topic goes through the
real `rag.search.search` three times (mode dense, text, hybrid; top 20 chunks, the most it returns), the hits are
reduced to documents in rank order (a document's best chunk), and nDCG@10 (binary gains: a judgement above 0 is
relevant) and recall@10 are averaged over all topics that have judgements.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rag_setup import ROOT, bench_workspace, print_header, rag_environment

MODES: tuple[Literal["dense", "text", "hybrid"], ...] = ("dense", "text", "hybrid")
DEPTH = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, default=ROOT.parent / "shared" / "data" / "cranfield")
    parser.add_argument("--topic-ids", choices=("position", "num"), default="position")
    parser.add_argument("--limit", type=int, default=0, help="only the first N topics (0: all)")
    arguments = parser.parse_args()
    documents, topics, qrels = read_collection(arguments.collection, arguments.topic_ids)
    if arguments.limit:
        topics = dict(list(topics.items())[: arguments.limit])
    with rag_environment("toolport_bench_rag_quality"):
        run(documents, topics, qrels, arguments.collection)


# --- the collection --------------------------------------------------------------------------------------------------


def _elements(path: Path, tag: str) -> list[ET.Element]:
    """The `tag` elements of a TREC file (several top-level elements, maybe an XML declaration, no common root)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    # a collection on this machine that the operator names, not input from users
    return ET.fromstring(f"<collection>{text}</collection>").findall(f".//{tag}")  # noqa: S314


def _field(element: ET.Element, name: str) -> str:
    found = element.find(name)
    return " ".join((found.text or "").split()) if found is not None and found.text else ""


def read_collection(
    folder: Path, topic_ids: str
) -> tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """(docno → (title, text)), (query id → query text), (query id → docno → relevance > 0)."""
    documents: dict[str, tuple[str, str]] = {}
    topics: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for path in sorted(folder.iterdir()):
        head = path.read_text(encoding="utf-8", errors="replace")[:4000] if path.is_file() else ""
        if "<doc>" in head:
            for element in _elements(path, "doc"):
                body = element.find("text")
                text = (body.text or "").strip() if body is not None else ""
                documents[_field(element, "docno")] = (_field(element, "title"), text)
        elif "<top>" in head:
            for position, element in enumerate(_elements(path, "top"), start=1):
                number = str(position) if topic_ids == "position" else _field(element, "num")
                topics[number] = _field(element, "title") or _field(element, "desc")
        elif re.match(r"^\S+\s+\S+\s+\S+\s+-?\d+\s*$", head.splitlines()[0] if head else ""):
            for line in path.read_text().splitlines():
                if line.strip():
                    query, _iteration, docno, relevance = line.split()
                    if int(relevance) > 0:
                        qrels.setdefault(query, {})[docno] = int(relevance)
    if not documents or not topics or not qrels:
        sys.exit(f"{folder} needs TREC documents (<doc>), topics (<top>) and qrels (query 0 docno relevance).")
    return documents, topics, qrels


# --- the run ---------------------------------------------------------------------------------------------------------


def run(
    documents: dict[str, tuple[str, str]], topics: dict[str, str], qrels: dict[str, dict[str, int]], folder: Path
) -> None:
    from core.errors import ToolportError
    from rag.embedding import embedder
    from rag.search import MAX_TOP_K, search
    from rag.services import document_ingest, document_upload, knowledge_base_create

    print_header()
    judged = {query: text for query, text in topics.items() if qrels.get(query)}
    print(f"collection: {folder}: {len(documents):,} documents, {len(topics):,} topics ({len(judged):,} judged)")
    member = bench_workspace("bench-rag-quality")
    base = knowledge_base_create(actor=member, name="collection")
    embedder()  # load the model before timing anything
    started = time.perf_counter()
    docno_of = {}
    skipped = []
    for docno, (_title, text) in documents.items():
        try:
            document = document_upload(actor=member, knowledge_base=base, name=f"{docno}.txt", data=text.encode())
        except ToolportError as error:  # an empty record, or one with the same text as another
            skipped.append(f"{docno} ({getattr(error, 'message', error)})")
            continue
        status = document_ingest(document.pk)
        if status != "ready":
            document.refresh_from_db()
            skipped.append(f"{docno} ({status}: {document.error})")
            continue
        docno_of[document.pk] = docno
    seconds = time.perf_counter() - started
    from rag.models import Chunk

    chunks = Chunk.objects.filter(knowledge_base=base).count()
    print(
        f"ingested {len(docno_of):,} documents into {chunks:,} chunks in {seconds:.1f} s "
        f"(upload + document_ingest, one document at a time)"
    )
    if skipped:
        print(f"not ingested: {', '.join(skipped)}")

    results: dict[str, tuple[list[float], list[float]]] = {mode: ([], []) for mode in MODES}
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    for query, text in judged.items():
        relevant = qrels[query]
        for mode in MODES:
            start = time.perf_counter()
            hits = search(workspace_id=member.workspace_id, query=text, top_k=MAX_TOP_K, mode=mode)
            timings[mode].append(time.perf_counter() - start)
            ranked = list(dict.fromkeys(docno_of[hit.document_id] for hit in hits))[:DEPTH]
            results[mode][0].append(ndcg(ranked, relevant))
            results[mode][1].append(sum(docno in relevant for docno in ranked) / len(relevant))
    print(f"\n{len(judged)} topics through rag.search.search (top {MAX_TOP_K} chunks → documents), @{DEPTH}:")
    print(f"  {'mode':<8} {'nDCG@10':>8} {'recall@10':>10} {'median search':>14}")
    for mode in MODES:
        ndcgs, recalls = results[mode]
        median = statistics.median(timings[mode]) * 1000
        print(f"  {mode:<8} {statistics.fmean(ndcgs):8.3f} {statistics.fmean(recalls):10.3f} {median:11.1f} ms")
    gain = statistics.fmean(results["hybrid"][0]) - statistics.fmean(results["dense"][0])
    print(f"hybrid - dense nDCG@10: {gain:+.3f} ({'hybrid beats dense' if gain > 0 else 'hybrid does NOT beat dense'})")


def ndcg(ranked: list[str], relevant: dict[str, int]) -> float:
    """nDCG at len(ranked), binary gains (the collection's judgements are binary)."""
    dcg = sum(1 / math.log2(rank + 2) for rank, docno in enumerate(ranked) if docno in relevant)
    best = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), DEPTH)))
    return dcg / best if best else 0.0


if __name__ == "__main__":
    main()
