"""Upload → ready through a real Celery worker for every kind of file, and every refusal before anything is stored."""

import time
from pathlib import Path

import pytest
from django.contrib.postgres.search import SearchQuery

from accounts.models import Role
from accounts.tests.factories import MembershipFactory
from billing.models import BillingAccount, Metric
from billing.quotas import QuotaExceeded, quota_policy_forget, quota_usage
from billing.tests.factories import workspace_on_plan
from core.errors import Conflict, TooLarge
from rag.extraction import ExtractionError
from rag.models import Chunk, Document, DocumentStatus
from rag.services import document_delete, document_ingest, document_retry, document_upload, knowledge_base_create
from rag.tests.documents import damaged_pdf, encrypted_pdf, pdf_with_text, pdf_without_text

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PARAGRAPH = "Hypersonic inlets compress the air before combustion; shock trains set the pressure recovery. "


def _member(ai_operations: int | None = 10_000, storage: int | None = 50_000_000):
    workspace = workspace_on_plan(api_calls=None, ai_operations=ai_operations)
    plan = BillingAccount.objects.get(workspace=workspace).plan
    plan.storage_bytes = storage
    plan.save()
    quota_policy_forget(workspace_id=workspace.pk)
    return MembershipFactory.create(workspace=workspace, role=Role.ADMIN)


def _wait_until_settled(document: Document, timeout: float = 60) -> Document:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.status in (DocumentStatus.READY, DocumentStatus.FAILED):
            return document
        time.sleep(0.1)
    raise AssertionError(f"{document.name} is still {document.status} ({document.progress}%)")


def _stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


FILES = {
    "notes.txt": (PARAGRAPH * 40).encode(),
    "guide.md": ("# Inlets\n\n## Shock trains\n\n" + PARAGRAPH * 40).encode(),
    "page.html": (
        "<html><head><title>Inlet design</title></head><body><h1>Inlets</h1><p>" + PARAGRAPH * 40 + "</p></body></html>"
    ).encode(),
    "paper.pdf": pdf_with_text([[PARAGRAPH[:90]] * 30, [PARAGRAPH[:90]] * 30], title="Inlet paper"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_kind_of_file_becomes_searchable_chunks(celery_worker, media, name):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="research")
    document = document_upload(actor=member, knowledge_base=knowledge_base, name=name, data=FILES[name])
    assert document.status == DocumentStatus.UPLOADED
    assert str(document.file.name).startswith(f"workspaces/{member.workspace_id}/documents/")

    document = _wait_until_settled(document)

    assert (document.status, document.progress, document.error) == (DocumentStatus.READY, 100, "")
    chunks = list(Chunk.objects.filter(document=document))
    assert document.chunk_count == len(chunks) >= 2
    assert all(chunk.model == "all-MiniLM-L6-v2-onnx-int8" and len(chunk.embedding) == 384 for chunk in chunks)
    found = Chunk.objects.filter(document=document, search_vector=SearchQuery("shock", config="english"))
    assert found.exists()
    assert document.title in {"notes", "Inlets", "Inlet design", "Inlet paper"}
    used = {status.metric: status.used for status in quota_usage(workspace_id=member.workspace_id)}
    assert used[Metric.AI_OPERATIONS] <= len(chunks)  # identical chunks are embedded once
    assert used[Metric.STORAGE_BYTES] == len(FILES[name])


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("secret.pdf", encrypted_pdf(), ExtractionError),
        ("scan.pdf", pdf_without_text(), ExtractionError),
        ("broken.pdf", damaged_pdf(), ExtractionError),
        ("empty.txt", b"", ExtractionError),
        ("image.png", b"\x89PNG\r\n\x1a\n", ExtractionError),
        ("big.txt", b"x" * 3_000_000, TooLarge),
    ],
)
def test_refused_uploads_store_nothing(media, name, data, error):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="docs")
    plan = BillingAccount.objects.get(workspace=member.workspace).plan
    plan.max_upload_bytes = 2_000_000
    plan.save()
    with pytest.raises(error):
        document_upload(actor=member, knowledge_base=knowledge_base, name=name, data=data)
    assert not Document.objects.filter(knowledge_base=knowledge_base).exists()
    assert _stored_files(media) == []


def test_over_the_storage_quota_and_duplicates_are_refused(media):
    member = _member(storage=5_000)
    knowledge_base = knowledge_base_create(actor=member, name="docs")
    document_upload(actor=member, knowledge_base=knowledge_base, name="a.txt", data=b"a" * 3_000)
    with pytest.raises(QuotaExceeded, match="of storage, and this would go over it"):
        document_upload(actor=member, knowledge_base=knowledge_base, name="b.txt", data=b"b" * 3_000)
    with pytest.raises(Conflict, match=r"same content as a\.txt"):
        document_upload(actor=member, knowledge_base=knowledge_base, name="copy.txt", data=b"a" * 3_000)
    assert len(_stored_files(media)) == 1


def test_ingestion_is_idempotent_and_a_spent_ai_quota_fails_then_retries(media):
    member = _member(ai_operations=1)
    knowledge_base = knowledge_base_create(actor=member, name="docs")
    document = document_upload(
        actor=member, knowledge_base=knowledge_base, name="long.txt", data=(PARAGRAPH * 60).encode()
    )
    assert document_ingest(document.pk) == DocumentStatus.FAILED  # needs more AI operations than the plan has
    document.refresh_from_db()
    assert "AI operations" in document.error
    assert not Chunk.objects.filter(document=document).exists()

    plan = BillingAccount.objects.get(workspace=member.workspace).plan
    plan.ai_operations_per_month = None
    plan.save()
    quota_policy_forget(workspace_id=member.workspace_id)
    document_retry(actor=member, document=document)
    assert document_ingest(document.pk) == DocumentStatus.READY
    count = Chunk.objects.filter(document=document).count()
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.EMBEDDING)  # as if redelivered mid-way
    assert document_ingest(document.pk) == DocumentStatus.READY
    assert Chunk.objects.filter(document=document).count() == count  # rebuilt, not duplicated

    document_delete(actor=member, document=document)
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert _stored_files(media) == []
