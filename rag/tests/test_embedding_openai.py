"""The OpenAI-compatible embedding provider against a real HTTP server on 127.0.0.1 speaking the OpenAI embeddings API
(rag/tests/embedding_api.py): the request it sends, the vectors it keeps, its retries and its refusals."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from accounts.models import Role
from accounts.tests.factories import MembershipFactory
from billing.models import Plan
from billing.tests.factories import workspace_on_plan
from rag.embedding import EmbedderUnavailable, configured_model, embedder
from rag.embedding.openai_api import OpenAIEmbedder
from rag.models import Chunk, DocumentStatus
from rag.reembedding import active_embedding
from rag.services import document_ingest, document_upload, knowledge_base_create
from rag.tests.embedding_api import KEY, EmbeddingAPI, embedding_api_running

MODEL = "rotated-minilm"


@pytest.fixture
def api() -> Iterator[EmbeddingAPI]:
    with embedding_api_running() as running:
        yield running


def _embedder(api: EmbeddingAPI, **options: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(base_url=api.url, api_key=KEY, model=MODEL, **{"backoff": 0.01, **options})  # type: ignore[arg-type]


def test_vectors_come_back_in_order_unit_length_with_the_request_openai_documents(api):
    model = _embedder(api)
    texts = ["How do I reset my password?", "Steps to change a forgotten account password", "Shock trains in inlets"]
    vectors = model.embed(texts)

    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, api.vectors(MODEL, texts), atol=1e-4)  # in input order, though `data` came reversed
    assert api.requests == [{"model": MODEL, "input": texts, "dimensions": 384, "encoding_format": "float"}]
    assert api.authorizations == [f"Bearer {KEY}"]
    assert model.model == "openai:rotated-minilm"
    query, related, unrelated = vectors
    assert float(query @ related) > float(query @ unrelated) + 0.3


def test_large_inputs_go_in_batches(api):
    model = _embedder(api, batch_size=2)
    texts = [f"passage number {index} about wind tunnels" for index in range(5)]
    vectors = model.embed(texts)
    assert [len(body["input"]) for body in api.requests] == [2, 2, 1]
    assert np.allclose(vectors, api.vectors(MODEL, texts), atol=1e-4)
    assert model.embed([]).shape == (0, 384)
    assert len(api.requests) == 3


def test_chunks_are_counted_with_the_vendored_minilm_tokenizer(api):
    model = _embedder(api)
    assert model.token_count("hello world") == 2
    assert model.token_count("aerodynamic " * 600) >= 600
    assert api.requests == []  # counting never calls the API


def test_a_wrong_key_is_refused_clearly_and_not_retried(api):
    model = OpenAIEmbedder(base_url=api.url, api_key="sk-wrong", model=MODEL, backoff=0.01)
    with pytest.raises(EmbedderUnavailable, match=r"refused the key \(401: Incorrect API key provided\.\)") as error:
        model.embed(["anything"])
    assert "EMBEDDING_API_KEY" in error.value.message
    assert "sk-wrong" not in error.value.message
    assert len(api.requests) == 1


def test_rate_limits_and_server_errors_are_retried_with_backoff(api):
    api.failures = [429, 503]
    vectors = _embedder(api).embed(["retried until it works"])
    assert vectors.shape == (1, 384)
    assert len(api.requests) == 3

    api.failures, api.retry_after = [429], None  # no Retry-After: the client's own backoff
    assert _embedder(api).embed(["again"]).shape == (1, 384)


def test_an_api_that_keeps_failing_is_reported_after_the_retries(api):
    api.failures = [500] * 10
    with pytest.raises(EmbedderUnavailable, match=r"answered 500 .*, 3 times; try again later"):
        _embedder(api, max_retries=2).embed(["x"])
    assert len(api.requests) == 3


def test_a_model_of_another_size_is_refused(api):
    api.dimensions = 1536
    with pytest.raises(EmbedderUnavailable, match=r"1536-dimensional vectors; Toolport stores 384") as error:
        _embedder(api).embed(["too wide"])
    assert "text-embedding-3-small" in error.value.message


def test_a_wrong_url_a_slow_api_and_an_unreachable_one(api):
    with pytest.raises(EmbedderUnavailable, match=r"404.*Check EMBEDDING_API_URL"):
        OpenAIEmbedder(base_url=api.url + "/wrong", api_key=KEY, model=MODEL).embed(["x"])
    api.delay = 1.0
    with pytest.raises(EmbedderUnavailable, match=r"did not answer within 0\.2 s, 2 times"):
        _embedder(api, timeout=0.2, max_retries=1).embed(["x"])
    with pytest.raises(EmbedderUnavailable, match="could not be reached"):
        OpenAIEmbedder(base_url="http://127.0.0.1:9/v1", api_key=KEY, model=MODEL, max_retries=0).embed(["x"])


def test_the_environment_selects_the_provider(api, settings):
    settings.EMBEDDING_PROVIDER = "openai"
    settings.EMBEDDING_API_URL = ""
    settings.EMBEDDING_MODEL = MODEL
    assert configured_model() == "openai:rotated-minilm"
    with pytest.raises(EmbedderUnavailable, match="EMBEDDING_API_URL is not set"):
        embedder()
    settings.EMBEDDING_API_URL = api.url
    settings.EMBEDDING_API_KEY = KEY
    model = embedder()
    assert isinstance(model, OpenAIEmbedder)
    assert model is embedder()
    assert model.url == f"{api.url}/embeddings"
    settings.EMBEDDING_PROVIDER = "word2vec"
    with pytest.raises(EmbedderUnavailable, match="use 'minilm' or 'openai'"):
        embedder()


@pytest.mark.django_db
def test_ingestion_reports_a_refused_key_as_the_documents_failure(api, settings, tmp_path: Path):
    settings.MEDIA_ROOT = tmp_path
    settings.EMBEDDING_PROVIDER = "openai"
    settings.EMBEDDING_API_URL = api.url
    settings.EMBEDDING_API_KEY = "sk-revoked"
    settings.EMBEDDING_MODEL = MODEL
    workspace = workspace_on_plan(api_calls=None, ai_operations=None)
    Plan.objects.filter(accounts__workspace=workspace).update(storage_bytes=None)
    member = MembershipFactory.create(workspace=workspace, role=Role.ADMIN)
    knowledge_base = knowledge_base_create(actor=member, name="docs")
    document = document_upload(
        actor=member, knowledge_base=knowledge_base, name="notes.txt", data=b"Wind tunnels measure lift. " * 50
    )
    assert active_embedding().model == "openai:rotated-minilm"  # a new installation starts on the configured model

    assert document_ingest(document.pk) == DocumentStatus.FAILED
    document.refresh_from_db()
    assert document.error.startswith("The embedding API at http://127.0.0.1:")
    assert "refused the key (401" in document.error
    assert "EMBEDDING_API_KEY" in document.error
    assert not Chunk.objects.filter(document=document).exists()

    settings.EMBEDDING_API_KEY = KEY
    document.status = DocumentStatus.UPLOADED
    document.save()
    assert document_ingest(document.pk) == DocumentStatus.READY
    chunks = list(Chunk.objects.filter(document=document))
    assert chunks
    assert all(chunk.model == "openai:rotated-minilm" for chunk in chunks)
    assert np.allclose(chunks[0].embedding, api.vectors(MODEL, [chunks[0].text])[0], atol=1e-4)
