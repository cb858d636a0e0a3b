"""Knowledge as MCP resources: every ready document a caller may read is listed as `kb://<knowledge-base>/<id>`
and readable as its extracted text; the template `kb://{knowledge_base}/{document}` completes both arguments.
Registered with the tool registry's resource providers, so the MCP endpoint merges it with the others."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from core.threads import run_sync
from rag import selectors
from tools.resources import ResourceCaller, resource_provider_register

TEMPLATE = "kb://{knowledge_base}/{document}"
LIST_MAX = 5_000  # documents listed per caller; the template and search_knowledge reach the rest
READ_MAX_CHARS = 2_000_000  # one read; read_document pages through longer texts


class KnowledgeResources:
    def resources(self, caller: ResourceCaller) -> list[types.Resource]:
        documents = selectors.readable_documents(workspace_id=caller.workspace_id, api_key=caller.api_key)
        return [
            types.Resource(
                uri=selectors.document_uri(document),
                name=document.name,
                title=document.title or None,
                description=f"A document in the knowledge base {document.knowledge_base.name} "
                f"({document.chunk_count} passages).",
                mime_type="text/plain",
            )
            for document in documents.order_by("knowledge_base__name", "name")[:LIST_MAX]
        ]

    def templates(self, caller: ResourceCaller) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uri_template=TEMPLATE,
                name="knowledge-document",
                title="Knowledge document",
                description="The text of a document in a knowledge base, by knowledge base name and document id "
                "(list_documents and search_knowledge give both).",
                mime_type="text/plain",
            )
        ]

    async def read(self, caller: ResourceCaller, uri: str) -> types.ReadResourceResult | None:
        if not uri.startswith(selectors.URI_PREFIX):
            return None
        return await run_sync(self._read)(caller, uri)

    def _read(self, caller: ResourceCaller, uri: str) -> types.ReadResourceResult | None:
        document = selectors.document_at(uri, workspace_id=caller.workspace_id, api_key=caller.api_key)
        if document is None:
            return None
        length = selectors.document_length(document)
        text = selectors.document_text(document, 0, min(length, READ_MAX_CHARS))
        if length > READ_MAX_CHARS:
            text += f"\n\n[{length - READ_MAX_CHARS:,} more characters: call read_document with start={READ_MAX_CHARS}]"
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=text)]
        )

    async def complete(
        self, caller: ResourceCaller, reference: Any, argument: str, value: str, context: dict[str, str]
    ) -> list[str] | None:
        if getattr(reference, "uri", None) != TEMPLATE:
            return None
        return await run_sync(self._complete)(caller, argument, value, context)

    def _complete(self, caller: ResourceCaller, argument: str, value: str, context: dict[str, str]) -> list[str]:
        documents = selectors.readable_documents(workspace_id=caller.workspace_id, api_key=caller.api_key)
        if argument == "knowledge_base":
            names = documents.filter(knowledge_base__name__startswith=value.lower())
            return list(
                names.order_by("knowledge_base__name").values_list("knowledge_base__name", flat=True).distinct()[:100]
            )
        if argument == "document":
            base = context.get("knowledge_base", "")
            chosen = documents.filter(knowledge_base__name=base.lower()) if base else documents
            ids = chosen.order_by("-created_at").values_list("pk", flat=True)[:500]
            return [str(pk) for pk in ids if str(pk).startswith(value)][:100]
        return []


resource_provider_register(KnowledgeResources())
