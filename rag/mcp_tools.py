"""Knowledge as MCP tools, registered in the tool registry like every built-in (staff can disable them or change their
level): search, list, read and find related documents. Each sees only the knowledge bases the caller may read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np
from django.db.models import Avg
from pgvector.django import VectorField

from rag.models import Chunk, Document, DocumentStatus
from rag.search import readable_knowledge_bases, search
from rag.selectors import document_at, document_length, document_text, document_uri
from tools.builtins import ToolContext, ToolResult, builtin_tool

READ_MAX_CHARS = 20_000


def _document_of(context: ToolContext, uri: str) -> Document | None:
    return document_at(uri, workspace_id=context.workspace_id, api_key=context.api_key)


@builtin_tool(
    name="search_knowledge",
    title="Search knowledge",
    description=(
        "Search the knowledge bases this key can read for passages that answer a question. Returns the best passages "
        "with their document, section, a snippet with the matched words in **bold**, a score and a kb:// URI that "
        "read_document opens."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 2000},
            "knowledge_base": {
                "type": "string",
                "maxLength": 60,
                "description": "Search only this knowledge base (its name).",
            },
            "top_k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
def search_knowledge(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    hits = search(
        workspace_id=context.workspace_id,
        query=arguments["query"],
        api_key=context.api_key,
        knowledge_base=arguments.get("knowledge_base"),
        top_k=arguments.get("top_k", 5),
    )
    if not hits:
        return ToolResult(text="No passage matches that query in the knowledge bases this key can read.")
    results = [hit.as_result() for hit in hits]
    lines = [
        f"{number}. {hit.document}" + (f" — {hit.heading_path}" if hit.heading_path else "") + f" ({hit.uri})\n"
        f"   {hit.snippet}"
        for number, hit in enumerate(hits, start=1)
    ]
    return ToolResult(text="\n".join(lines), structured={"results": results})


@builtin_tool(
    name="list_documents",
    title="List documents",
    description="The documents in the knowledge bases this key can read (or in one of them), with their kb:// URIs.",
    input_schema={
        "type": "object",
        "properties": {"knowledge_base": {"type": "string", "maxLength": 60}},
        "additionalProperties": False,
    },
)
def list_documents(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    bases = readable_knowledge_bases(workspace_id=context.workspace_id, api_key=context.api_key)
    if arguments.get("knowledge_base"):
        bases = bases.filter(name=str(arguments["knowledge_base"]).lower())
    documents = (
        Document.objects.filter(knowledge_base__in=bases, status=DocumentStatus.READY)
        .select_related("knowledge_base")
        .order_by("knowledge_base__name", "name")[:500]
    )
    listed = [
        {"uri": document_uri(document), "name": document.name, "title": document.title, "chunks": document.chunk_count}
        for document in documents
    ]
    if not listed:
        return ToolResult(
            text="No ready documents in the knowledge bases this key can read.", structured={"documents": []}
        )
    text = "\n".join(f"{entry['uri']}  {entry['title'] or entry['name']}" for entry in listed)
    return ToolResult(text=text, structured={"documents": listed})


@builtin_tool(
    name="read_document",
    title="Read a document",
    description=(
        "The text of a document by its kb:// URI, from character `start` to `end` (at most 20,000 characters at a "
        "time; search results give the offsets of their passages)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "uri": {"type": "string", "pattern": "^kb://"},
            "start": {"type": "integer", "minimum": 0, "default": 0},
            "end": {"type": "integer", "minimum": 1},
        },
        "required": ["uri"],
        "additionalProperties": False,
    },
)
def read_document(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    document = _document_of(context, arguments["uri"])
    if document is None:
        return ToolResult(text=f"No readable document at {arguments['uri']}.", is_error=True)
    length = document_length(document)
    start = min(int(arguments.get("start", 0)), length)
    end = min(int(arguments.get("end") or start + READ_MAX_CHARS), start + READ_MAX_CHARS, length)
    part = document_text(document, start, end)
    structured = {"uri": arguments["uri"], "start": start, "end": end, "length": length}
    return ToolResult(text=part, structured=structured)


@builtin_tool(
    name="recommend_related",
    title="Related documents",
    description="Documents about the same things as the one at a kb:// URI, best first.",
    input_schema={
        "type": "object",
        "properties": {"uri": {"type": "string", "pattern": "^kb://"}},
        "required": ["uri"],
        "additionalProperties": False,
    },
)
def recommend_related(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    document = _document_of(context, arguments["uri"])
    if document is None:
        return ToolResult(text=f"No readable document at {arguments['uri']}.", is_error=True)
    bases = readable_knowledge_bases(workspace_id=context.workspace_id, api_key=context.api_key)
    centroids = _centroids(
        Chunk.objects.filter(knowledge_base__in=bases, document__status=DocumentStatus.READY).exclude(document=document)
    )
    own = _centroids(Chunk.objects.filter(document=document)).get(document.pk)
    best = (
        sorted(((float(own @ vector), pk) for pk, vector in centroids.items()), reverse=True)[:5]
        if own is not None
        else []
    )
    documents = Document.objects.select_related("knowledge_base").in_bulk([pk for _score, pk in best])
    related = [
        {
            "uri": document_uri(documents[pk]),
            "title": documents[pk].title or documents[pk].name,
            "score": round(score, 4),
        }
        for score, pk in best
    ]
    if not related:
        return ToolResult(text="No other readable documents to compare with.", structured={"related": []})
    text = "\n".join(f"{entry['uri']}  {entry['title']} ({entry['score']})" for entry in related)
    return ToolResult(text=text, structured={"related": related})


def _centroids(chunks: Any) -> dict[UUID, np.ndarray]:
    """Each document's mean chunk vector, L2-normalised, computed by PostgreSQL (pgvector's avg) in one query."""
    rows = chunks.values("document_id").annotate(centroid=Avg("embedding", output_field=VectorField()))
    centroids = {}
    for row in rows:
        vector = np.asarray(row["centroid"], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if norm:
            centroids[row["document_id"]] = vector / norm
    return centroids
