"""The console's Knowledge pages, through Django's test client against the real database, storage and a real
in-process Celery worker: create, upload (one file per request as the page's script does, and the plain form),
progress rows, failures with Retry, text and download, search with links, delete, and isolation between
workspaces."""

import re

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.tests.factories import MembershipFactory
from billing.models import BillingAccount
from billing.quotas import quota_policy_forget
from billing.tests.factories import workspace_on_plan
from monitoring.models import AuditEvent
from rag.models import Chunk, Document, DocumentStatus, KnowledgeBase
from rag.tests.test_ingestion import _stored_files, _wait_until_settled

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HANDBOOK = (
    "# Handbook\n\n## Keys\n\nRotate an API key from the API keys page; the old key keeps working during the grace "
    "period you choose.\n\n## Billing\n\nInvoices arrive by email on the first day of each month.\n"
)


@pytest.fixture
def member():
    workspace = workspace_on_plan(api_calls=None, ai_operations=10_000)
    plan = BillingAccount.objects.get(workspace=workspace).plan
    plan.max_upload_bytes = 1_000_000
    plan.storage_bytes = 50_000_000
    plan.save()
    quota_policy_forget(workspace_id=workspace.pk)
    return MembershipFactory.create(workspace=workspace, role=Role.ADMIN)


def _signed_in(client, member):
    client.force_login(member.user)
    return client


def _url(name, member, *args):
    return reverse(f"console:{name}", args=[member.workspace_id, *args])


def _create(client, member, name="handbook"):
    response = client.post(_url("knowledge", member), {"name": name, "title": "Team handbook", "description": ""})
    assert response.status_code == 302, response.content.decode()
    return KnowledgeBase.objects.get(workspace=member.workspace, name=name)


def _upload(client, member, name, filename, data, content_type="text/markdown"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        _url("document_upload", member, name),
        {"files": [SimpleUploadedFile(filename, data, content_type)], "tags": "guide, v2"},
        headers={"X-Upload": "1"},
    )


def test_empty_states_then_create_a_knowledge_base(client, member):
    _signed_in(client, member)
    page = client.get(_url("knowledge", member)).content.decode()
    assert "No knowledge bases yet" in page
    refused = client.post(_url("knowledge", member), {"name": "Not a slug!"})
    assert refused.status_code == 400
    assert "letters, numbers, underscores or hyphens" in refused.content.decode()
    base = _create(client, member)
    page = client.get(_url("knowledge_base", member, base.name)).content.decode()
    assert "No documents yet: drop some above." in page
    assert "up to 977 KB each (Test plan)" in page  # the plan's upload size
    assert "Team handbook" in client.get(_url("knowledge", member)).content.decode()
    duplicate = client.post(_url("knowledge", member), {"name": "handbook"})
    assert "already has a knowledge base named handbook" in duplicate.content.decode()


def test_upload_shows_progress_then_ready_and_the_text_search_and_download_work(client, member, celery_worker):
    _signed_in(client, member)
    base = _create(client, member)
    response = _upload(client, member, base.name, "handbook.md", HANDBOOK.encode())
    assert response.status_code == 201
    row = response.content.decode()
    document = Document.objects.get(knowledge_base=base)
    assert f'id="doc-{document.pk}"' in row
    assert document.tags == ["guide", "v2"]
    document = _wait_until_settled(document)
    assert document.status == DocumentStatus.READY
    row = client.get(_url("document_row", member, base.name, document.pk)).content.decode()
    assert "ready" in row
    assert "hx-trigger" not in row  # a settled row stops polling
    assert f"{document.chunk_count} chunk" in row

    results = client.get(_url("knowledge_search", member), {"q": "how do I rotate a key"}).content.decode()
    assert "Handbook" in results
    assert "<mark>" in results  # the matched words are marked
    link = re.search(r'href="([^"]*/documents/[^"]*start=\d+&amp;end=\d+#passage)"', results)
    assert link is not None, results[results.find("<ol") : results.find("<ol") + 800]
    detail = client.get(link.group(1).replace("&amp;", "&")).content.decode()
    assert '<mark id="passage">' in detail
    assert "grace" in detail
    assert f"kb://handbook/{document.pk}" in detail

    download = client.get(_url("document_download", member, base.name, document.pk))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == HANDBOOK.encode()
    assert "attachment" in download["Content-Disposition"]


def test_refused_uploads_answer_the_reason_and_store_nothing(client, member, media):
    _signed_in(client, member)
    base = _create(client, member)
    too_big = _upload(client, member, base.name, "big.txt", b"x" * 1_100_000, "text/plain")
    assert too_big.status_code == 413
    assert "accepts files up to" in too_big.content.decode()
    wrong = _upload(client, member, base.name, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")
    assert wrong.status_code == 400
    assert "photo.png" in wrong.content.decode()
    assert not Document.objects.exists()
    assert _stored_files(media) == []
    first = _upload(client, member, base.name, "a.md", HANDBOOK.encode())
    assert first.status_code == 201
    again = _upload(client, member, base.name, "copy.md", HANDBOOK.encode())
    assert again.status_code == 409
    assert "same content as a.md" in again.content.decode()


def test_the_plain_form_uploads_several_files_with_a_message_each(client, member, celery_worker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _signed_in(client, member)
    base = _create(client, member)
    files = [
        SimpleUploadedFile("one.md", b"# One\n\nThe first document about inlets.", "text/markdown"),
        SimpleUploadedFile("two.txt", b"The second document about nozzles.", "text/plain"),
        SimpleUploadedFile("three.exe", b"MZ\x90\x00", "application/octet-stream"),
    ]
    page = client.post(_url("document_upload", member, base.name), {"files": files}, follow=True).content.decode()
    assert "one.md uploaded" in page
    assert "two.txt uploaded" in page
    assert "three.exe" in page
    assert Document.objects.filter(knowledge_base=base).count() == 2


def test_a_failed_document_shows_its_reason_and_retry_runs_it_again(client, member, media, celery_worker):
    _signed_in(client, member)
    base = _create(client, member)
    assert _upload(client, member, base.name, "notes.md", HANDBOOK.encode()).status_code == 201
    document = _wait_until_settled(Document.objects.get(knowledge_base=base))
    # The stored file disappears (a storage outage): ingestion fails with a reason the row shows.
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.UPLOADED)
    Chunk.objects.filter(document=document).delete()
    stored = media / document.file.name
    saved = stored.read_bytes()
    stored.unlink()
    from rag.services import _enqueue

    _enqueue(document.pk)
    document = _wait_until_settled(document)
    assert document.status == DocumentStatus.FAILED
    row = client.get(_url("document_row", member, base.name, document.pk)).content.decode()
    assert "The stored file is missing" in row
    assert "Retry" in row
    stored.write_bytes(saved)
    retried = client.post(_url("document_retry", member, base.name, document.pk), headers={"HX-Request": "true"})
    assert retried.status_code == 200
    assert "hx-trigger" in retried.content.decode()  # back to processing: the row polls again
    assert _wait_until_settled(document).status == DocumentStatus.READY
    assert AuditEvent.objects.filter(action="document.retry").exists()


def test_delete_a_document_and_a_knowledge_base_with_its_files(client, member, media):
    _signed_in(client, member)
    base = _create(client, member)
    for index in range(3):
        assert _upload(client, member, base.name, f"{index}.md", f"# Doc {index}\n\ntext".encode()).status_code == 201
    document = Document.objects.filter(knowledge_base=base).order_by("name")[0]
    client.post(_url("document_delete", member, base.name, document.pk))
    assert Document.objects.filter(knowledge_base=base).count() == 2
    assert len(_stored_files(media)) == 2
    kept = client.post(_url("knowledge_base_delete", member, base.name), {"confirm": "wrong"}, follow=True)
    assert "Type handbook to confirm" in kept.content.decode()
    assert KnowledgeBase.objects.filter(pk=base.pk).exists()
    gone = client.post(_url("knowledge_base_delete", member, base.name), {"confirm": "handbook"}, follow=True)
    assert "deleted with its 2 documents" in gone.content.decode()
    assert not KnowledgeBase.objects.filter(pk=base.pk).exists()
    assert _stored_files(media) == []
    assert AuditEvent.objects.filter(action="knowledge_base.delete").exists()


def test_another_workspace_sees_nothing_and_members_cannot_delete_the_base(client, member):
    _signed_in(client, member)
    base = _create(client, member)
    assert _upload(client, member, base.name, "a.md", HANDBOOK.encode()).status_code == 201
    document = Document.objects.get(knowledge_base=base)
    outsider = MembershipFactory.create(role=Role.OWNER)
    client.force_login(outsider.user)
    for name, args in (
        ("knowledge_base", [base.name]),
        ("document", [base.name, document.pk]),
        ("document_download", [base.name, document.pk]),
        ("document_row", [base.name, document.pk]),
    ):
        # Their own workspace id with the other's names: no such knowledge base there.
        assert client.get(_url(name, outsider, *args)).status_code == 404
        # The other workspace's id: not a member.
        assert client.get(_url(name, member, *args)).status_code == 404
    assert client.post(_url("document_delete", member, base.name, document.pk)).status_code == 404
    colleague = MembershipFactory.create(workspace=member.workspace, role=Role.MEMBER)
    client.force_login(colleague.user)
    page = client.get(_url("knowledge_base", member, base.name)).content.decode()
    assert "Drop files here" in page  # members upload
    assert "Delete this knowledge base" not in page  # admins and owners delete
    refused = client.post(_url("knowledge_base_delete", member, base.name), {"confirm": "handbook"}, follow=True)
    assert "Only workspace admins and owners can delete knowledge bases" in refused.content.decode()
    assert KnowledgeBase.objects.filter(pk=base.pk).exists()
