"""The knowledge schema on the real PostgreSQL + pgvector: content is unique per knowledge base, and chunks are found
by cosine distance (HNSW) and by full text."""

import numpy as np
import pytest
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import IntegrityError, transaction
from pgvector.django import CosineDistance

from accounts.tests.factories import WorkspaceFactory
from rag.embedding import embedder
from rag.models import Chunk, Document, KnowledgeBase

pytestmark = pytest.mark.django_db


def _document(kb: KnowledgeBase, sha: str, name: str = "a.txt") -> Document:
    return Document.objects.create(
        workspace=kb.workspace,
        knowledge_base=kb,
        name=name,
        content_type="text/plain",
        size_bytes=10,
        sha256=sha,
        file=f"x/{name}",
    )


def test_the_same_content_twice_in_one_knowledge_base_is_refused():
    kb = KnowledgeBase.objects.create(workspace=WorkspaceFactory.create(), name="docs")
    _document(kb, "a" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        _document(kb, "a" * 64, name="copy.txt")
    other = KnowledgeBase.objects.create(workspace=kb.workspace, name="other")
    assert _document(other, "a" * 64).pk  # another knowledge base may hold it


def test_chunks_are_found_by_meaning_and_by_words():
    kb = KnowledgeBase.objects.create(workspace=WorkspaceFactory.create(), name="docs")
    document = _document(kb, "b" * 64)
    texts = [
        "To reset a forgotten password, open Settings and choose Security.",
        "Invoices are emailed on the first day of every month.",
        "Shock waves form on the wing at transonic speeds.",
    ]
    model = embedder()
    vectors = model.embed(texts)
    for position, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        Chunk.objects.create(
            workspace=kb.workspace,
            knowledge_base=kb,
            document=document,
            position=position,
            text=text,
            start=0,
            end=len(text),
            token_count=model.token_count(text),
            model=model.model,
            embedding=vector,
            search_vector="",
        )
    Chunk.objects.update(search_vector=SearchVector("text", config="english"))

    query = model.embed(["I can't log in, how do I change my password?"])[0]
    nearest = Chunk.objects.order_by(CosineDistance("embedding", query)).first()
    assert nearest is not None
    assert nearest.position == 0
    assert np.allclose(nearest.embedding, vectors[0], atol=1e-6)

    worded = Chunk.objects.filter(search_vector=SearchQuery("invoice", config="english"))
    assert [chunk.position for chunk in worded] == [1]
