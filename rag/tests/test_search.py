"""Hybrid search and the knowledge tools: the right passage first, nothing from another workspace or outside the
key's scope, and the tools reached by an MCP client with the official SDK."""

import json
from uuid import UUID

import anyio
import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from accounts.api_keys import api_key_authenticate
from accounts.models import Role
from accounts.tests.factories import MembershipFactory, issue_key
from billing.models import Metric, Plan
from billing.quotas import quota_usage
from billing.tests.factories import workspace_on_plan
from rag import search as search_module
from rag.embedding import embedder_for
from rag.models import Chunk, Document, KnowledgeBase
from rag.search import SETTINGS_SQL, _any_of, _at_least_two, common_lexemes, common_lexemes_forget, or_query, search
from rag.services import document_ingest, document_upload, knowledge_base_create
from tests.mcp.conftest import http_client
from tools.executors import tool_call

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AERO = "# Aerodynamics\n\n## Lift\n\nA wing makes lift by turning the airflow downwards; the angle of attack sets it.\n"
BILLING = "# Billing\n\n## Invoices\n\nInvoices are emailed on the first day of each month with the amount due.\n"
PASSWORDS = "# Accounts\n\n## Passwords\n\nTo reset a forgotten password open Settings, then Security, then Reset.\n"


def _ingested(member, base: KnowledgeBase, name: str, text: str) -> Document:
    document = document_upload(actor=member, knowledge_base=base, name=name, data=text.encode())
    assert document_ingest(document.pk) == "ready"
    document.refresh_from_db()
    return document


def _workspace_with_knowledge():
    workspace = workspace_on_plan(api_calls=None, ai_operations=None)
    Plan.objects.filter(accounts__workspace=workspace).update(storage_bytes=None)  # its own test plan
    member = MembershipFactory.create(workspace=workspace, role=Role.ADMIN)
    docs = knowledge_base_create(actor=member, name="docs")
    support = knowledge_base_create(actor=member, name="support")
    _ingested(member, docs, "aero.md", AERO)
    _ingested(member, docs, "billing.md", BILLING)
    _ingested(member, support, "passwords.md", PASSWORDS)
    return member


def test_or_query_keeps_only_words():
    assert or_query("How do I reset my password?") == "how | do | i | reset | my | password"
    assert or_query("a) & b | !c:*") == "a | b | c"


def test_the_bounded_ranking_matches_chunks_with_two_of_the_words():
    """Lexemes go in as they are (quoted for tsquery input, not stemmed again); every pair is one alternative."""
    assert _at_least_two(["password", "reset", "o'neil"]) == (
        "'password' & 'reset' | 'password' & 'o''neil' | 'reset' & 'o''neil'"
    )
    assert _any_of(["password", "back\\slash"]) == "'password' | 'back\\\\slash'"


LEDGER = [
    "Ledger reconciliation, quarterly audit.",
    "Ledger reconciliation, quarterly.",
    "Ledger reconciliation, quarterly review of every account.",
    "Ledger reconciliation.",
    "Ledger quarterly.",
    "Ledger weekly notes.",
    "Ledger archive.",
    "Ledger export format.",
    "Ledger import from a bank.",
    "Ledger summary for the board.",
]


def test_full_text_finds_candidates_with_informative_words_and_widens_when_they_are_too_few(monkeypatch):
    """A word in most chunks ("ledger") ranks but finds no candidates; the passages with two of the rarer words come
    first; a query whose rare words match too few chunks is filled from wider bounds, down to the common word."""
    workspace = workspace_on_plan(api_calls=None, ai_operations=None)
    member = MembershipFactory.create(workspace=workspace, role=Role.ADMIN)
    base = knowledge_base_create(actor=member, name="finance")
    for number, text in enumerate(LEDGER):
        _ingested(member, base, f"ledger-{number}.txt", text)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk")
    common_lexemes_forget()
    # this knowledge base is tiny: the bounds' sizes shrink with it
    monkeypatch.setattr(search_module, "CANDIDATES", 3)
    monkeypatch.setattr(search_module, "COMMON_SHARE", 0.5)
    monkeypatch.setattr(search_module, "COMMON_MIN_CHUNKS", 0)
    assert common_lexemes(["ledger", "reconcili", "quarter", "audit"]) == {"ledger"}

    def texts(query: str) -> list[str]:
        hits = search(workspace_id=workspace.pk, query=query, top_k=3, mode="text")
        return [Document.objects.get(pk=hit.document_id).name for hit in hits]

    with CaptureQueriesContext(connection) as queries:
        found = texts("ledger reconciliation quarterly")
    # three chunks hold both rare words: one ranking, of those three alone; the wider bound's never runs
    assert sorted(found) == ["ledger-0.txt", "ledger-1.txt", "ledger-2.txt"]
    ran = _ctes_run(queries)
    assert ran == {"ranked0": 1, "ranked1": 0, "ranked2": 0, "level": 1, "lexical": 1, "fused": 1}
    # one chunk holds the rare word: the list is filled from the chunks with the common one
    with CaptureQueriesContext(connection) as queries:
        found = texts("ledger audit")
    assert _ctes_run(queries) == {"ranked0": 1, "ranked1": 1, "level": 1, "lexical": 1, "fused": 1}
    assert found[0] == "ledger-0.txt"
    assert len(found) == 3
    assert len(texts("ledger")) == 3  # common words alone still find passages
    assert texts("quarterly audit")[0] == "ledger-0.txt"
    common_lexemes_forget()


def _explained(queries: CaptureQueriesContext, options: str) -> str:
    """EXPLAIN `options` of the search statement among `queries` (as logged, with its values), after its settings,
    as search sends them; the plan's text, or its JSON."""
    sql = next(query["sql"] for query in queries if query["sql"].startswith(SETTINGS_SQL.split("%s")[0]))
    settings, statement = sql.split("; ", 1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(settings)
        cursor.execute(f"EXPLAIN ({options}) {statement}")
        rows = cursor.fetchall()
    return "\n".join(row[0] if isinstance(row[0], str) else json.dumps(row[0]) for row in rows)


def _ctes_run(queries: CaptureQueriesContext) -> dict[str, int]:
    """How many times each CTE of the search statement among `queries` ran (replayed under EXPLAIN ANALYZE)."""
    runs: dict[str, int] = {}

    def walk(node: dict) -> None:
        if node.get("Subplan Name", "").startswith("CTE "):
            runs[node["Subplan Name"][4:]] = node["Actual Loops"]
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(_explained(queries, "ANALYZE, FORMAT JSON"))[0]["Plan"])
    return runs


def test_the_right_passage_comes_first_and_names_its_section():
    member = _workspace_with_knowledge()
    hits = search(workspace_id=member.workspace_id, query="How can I change a password I forgot?")
    assert hits[0].document == "Accounts"
    assert hits[0].heading_path == "Accounts > Passwords"
    assert "**password**" in hits[0].snippet.lower()
    assert hits[0].uri.startswith("kb://support/")
    invoices = search(workspace_id=member.workspace_id, query="when is the invoice sent", knowledge_base="Docs")
    assert invoices[0].document == "Billing"
    # no knowledge base has such a name (nor does an unbounded name reach the cache of readable-bases SQL)
    assert search(workspace_id=member.workspace_id, query="when is the invoice sent", knowledge_base="docs" * 20) == []
    used = {status.metric: status.used for status in quota_usage(workspace_id=member.workspace_id)}
    assert used[Metric.AI_OPERATIONS] >= 2  # each query's embedding counts


def test_search_never_crosses_workspaces_or_the_keys_scope():
    member = _workspace_with_knowledge()
    other = workspace_on_plan(api_calls=None, ai_operations=None)
    other_member = MembershipFactory.create(workspace=other, role=Role.ADMIN)
    assert search(workspace_id=other.pk, query="reset a forgotten password") == []
    other_base = knowledge_base_create(actor=other_member, name="support")
    _ingested(other_member, other_base, "secret.md", "# Secret\n\nThe launch code of the other tenant is 4242.\n")
    assert all(hit.document != "Secret" for hit in search(workspace_id=member.workspace_id, query="launch code"))

    scoped = api_key_authenticate(raw_key=issue_key(member, knowledge_bases=["docs"]).secret)
    hits = search(workspace_id=member.workspace_id, query="reset password", api_key=scoped, top_k=10)
    assert hits
    assert {hit.knowledge_base for hit in hits} == {"docs"}

    result = tool_call(workspace_id=member.workspace_id, name="list_documents", arguments={}, api_key=scoped)
    assert result.structured is not None
    assert {entry["name"] for entry in result.structured["documents"]} == {"aero.md", "billing.md"}
    support = Document.objects.get(name="passwords.md", workspace_id=member.workspace_id)
    refused = tool_call(
        workspace_id=member.workspace_id,
        name="read_document",
        arguments={"uri": f"kb://support/{support.pk}"},
        api_key=scoped,
    )
    assert refused.is_error


def test_a_filtered_hnsw_walk_goes_on_until_it_finds_the_callers_chunks():
    """Another workspace's 600 chunks lie nearer the query than any of this one's: the HNSW index's first candidates
    (hnsw.ef_search of them) are all filtered out, and the iterative scan that search's settings turn on walks on
    to this workspace's chunk. Without those settings in effect the dense list would be empty."""
    crowd = MembershipFactory.create(workspace=workspace_on_plan(api_calls=None, ai_operations=None), role=Role.ADMIN)
    passwords = _ingested(crowd, knowledge_base_create(actor=crowd, name="support"), "passwords.md", PASSWORDS)
    near = Chunk.objects.get(document=passwords)
    query = "reset a forgotten password"
    centre = np.asarray(embedder_for(near.model).embed([query])[0])
    noise = np.random.default_rng(7).normal(scale=0.02, size=(600, centre.size))
    Chunk.objects.bulk_create(
        Chunk(
            workspace_id=near.workspace_id,
            knowledge_base_id=near.knowledge_base_id,
            document=passwords,
            position=position,
            text=near.text,
            start=near.start,
            end=near.end,
            token_count=near.token_count,
            model=near.model,
            embedding=(centre + offset) / np.linalg.norm(centre + offset),
            search_vector="",
        )
        for position, offset in enumerate(noise, start=1)
    )
    member = MembershipFactory.create(workspace=workspace_on_plan(api_calls=None, ai_operations=None), role=Role.ADMIN)
    _ingested(member, knowledge_base_create(actor=member, name="docs"), "aero.md", AERO)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk")
        # the HNSW walk, as at scale, not the exact search of a small tenant's few chunks the planner prefers here
        cursor.execute("SET enable_seqscan = off; SET enable_sort = off")
    try:
        with CaptureQueriesContext(connection) as queries:
            hits = search(workspace_id=member.workspace_id, query=query, mode="dense", top_k=5)
        plan = _explained(queries, "COSTS OFF")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan; RESET enable_sort")
    assert "Index Scan using rag_chunk_embedding_hnsw" in plan
    assert [hit.document for hit in hits] == ["Aerodynamics"]


def test_read_and_related_documents():
    member = _workspace_with_knowledge()
    context_key = api_key_authenticate(raw_key=issue_key(member).secret)
    aero = Document.objects.get(name="aero.md", workspace_id=member.workspace_id)
    read = tool_call(
        workspace_id=member.workspace_id,
        name="read_document",
        arguments={"uri": f"kb://docs/{aero.pk}", "start": 0, "end": 40},
        api_key=context_key,
    )
    assert read.text == AERO.strip()[:40]
    assert read.structured is not None
    assert read.structured["length"] >= len(AERO.strip())
    related = tool_call(
        workspace_id=member.workspace_id,
        name="recommend_related",
        arguments={"uri": f"kb://docs/{aero.pk}"},
        api_key=context_key,
    )
    assert related.structured is not None
    assert len(related.structured["related"]) == 2

    long_text = "# Long\n\n" + " ".join(f"Passage {n} about inlet shock trains and recovery." for n in range(400))
    long = _ingested(member, KnowledgeBase.objects.get(workspace=member.workspace, name="docs"), "long.md", long_text)
    assert long.chunk_count > 3
    window = tool_call(
        workspace_id=member.workspace_id,
        name="read_document",
        arguments={"uri": f"kb://docs/{long.pk}", "start": 5000, "end": 9000},
        api_key=context_key,
    )
    assert window.text == long_text[5000:9000]  # across chunk boundaries


def test_an_mcp_client_searches_with_the_official_sdk(mcp_server):
    member = _workspace_with_knowledge()
    key = issue_key(member).secret

    async def session():
        transport = streamable_http_client(mcp_server.url, http_client=http_client(key))
        async with Client(transport, mode="2026-07-28", cache=None) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("search_knowledge", {"query": "reset my password", "top_k": 2})
            return names, result

    names, result = anyio.run(session)
    assert {"search_knowledge", "read_document", "list_documents", "recommend_related"} <= names
    assert not result.is_error
    assert result.structured_content["results"][0]["section"] == "Accounts > Passwords"
    assert UUID(result.structured_content["results"][0]["uri"].rsplit("/", 1)[1])


def test_documents_are_mcp_resources_within_the_keys_scope(mcp_server):
    """kb:// resources through the official SDK client: listed and readable for what the key may read, never another
    workspace's or outside its scope; the template completes knowledge bases and documents."""
    from mcp import MCPError
    from mcp.types import ResourceTemplateReference

    member = _workspace_with_knowledge()
    other = MembershipFactory.create(workspace=workspace_on_plan(api_calls=None, ai_operations=None), role=Role.ADMIN)
    Plan.objects.filter(accounts__workspace=other.workspace).update(storage_bytes=None)
    secret = _ingested(other, knowledge_base_create(actor=other, name="docs"), "secret.md", "# Secret\n\nCode 4242.\n")
    passwords = Document.objects.get(name="passwords.md", workspace_id=member.workspace_id)
    aero = Document.objects.get(name="aero.md", workspace_id=member.workspace_id)
    scoped = issue_key(member, knowledge_bases=["docs"]).secret

    async def session(key: str):
        transport = streamable_http_client(mcp_server.url, http_client=http_client(key))
        async with Client(transport, mode="2026-07-28", cache=None) as client:
            listed = [str(resource.uri) for resource in (await client.list_resources()).resources]
            templates = [
                template.uri_template for template in (await client.list_resource_templates()).resource_templates
            ]
            read = await client.read_resource(f"kb://docs/{aero.pk}")
            refused = []
            for uri in (f"kb://support/{passwords.pk}", f"kb://docs/{secret.pk}"):
                try:
                    await client.read_resource(uri)
                except MCPError as error:
                    refused.append(error.error.code)
            reference = ResourceTemplateReference(type="ref/resource", uri="kb://{knowledge_base}/{document}")
            bases = await client.complete(reference, {"name": "knowledge_base", "value": ""})
            documents = await client.complete(
                reference, {"name": "document", "value": ""}, context_arguments={"knowledge_base": "docs"}
            )
            return listed, templates, read, refused, bases.completion.values, documents.completion.values

    listed, templates, read, refused, bases, documents = anyio.run(session, scoped)
    kb_uris = sorted(uri for uri in listed if uri.startswith("kb://"))
    expected = sorted(
        f"kb://docs/{pk}"
        for pk in Document.objects.filter(knowledge_base__name="docs", workspace_id=member.workspace_id).values_list(
            "pk", flat=True
        )
    )
    assert kb_uris == expected  # not support (outside the scope), not the other workspace's docs
    assert "kb://{knowledge_base}/{document}" in templates
    assert read.contents[0].text.strip() == AERO.strip()
    assert read.contents[0].mime_type == "text/plain"
    assert refused == [-32002, -32002]  # resource not found: the key may not know they exist
    assert bases == ["docs"]
    assert sorted(documents) == sorted(uri.rsplit("/", 1)[1] for uri in expected)

    everything, *_ = anyio.run(session, issue_key(member).secret)
    assert f"kb://support/{passwords.pk}" in everything
