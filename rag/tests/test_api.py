"""The knowledge REST API with a signed-in person and with API keys: multipart upload to ready through a real
Celery worker, upload by URL through the SSRF guard (a local server allowed explicitly; everything else refused),
scopes, read-only keys, errors with their status codes, search, download and delete."""

import http.server
import threading
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.api_keys import api_key_issue
from accounts.models import Role
from accounts.tests.factories import MembershipFactory
from billing.models import BillingAccount
from billing.quotas import quota_policy_forget
from billing.tests.factories import workspace_on_plan
from rag.models import Document, DocumentStatus, KnowledgeBase
from rag.services import knowledge_base_create
from rag.tests.test_console import HANDBOOK
from rag.tests.test_ingestion import _stored_files, _wait_until_settled

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin():
    workspace = workspace_on_plan(api_calls=None, ai_operations=10_000)
    plan = BillingAccount.objects.get(workspace=workspace).plan
    plan.max_upload_bytes = 200_000
    plan.storage_bytes = 50_000_000
    plan.save()
    quota_policy_forget(workspace_id=workspace.pk)
    return MembershipFactory.create(workspace=workspace, role=Role.ADMIN)


def _person(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(member.user)
    return client


def _key_client(member, **scopes) -> APIClient:
    issued = api_key_issue(actor=member, name="ci", **scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


def _root(member) -> str:
    return f"/api/v1/workspaces/{member.workspace_id}"


class _Site(http.server.BaseHTTPRequestHandler):
    """A small web server on 127.0.0.1: the network boundary for uploads by URL."""

    pages: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}

    def do_GET(self) -> None:
        status, content_type, body, headers = self.pages.get(self.path, (404, "text/plain", b"missing", {}))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(settings) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    settings.OUTBOUND_ALLOWED_HOSTS = [address]  # trusted explicitly, as an operator would
    _Site.pages = {
        "/guide/": (200, "text/html; charset=utf-8", b"<html><title>Guide</title><h1>Setup</h1><p>Install.</p>", {}),
        "/big.txt": (200, "text/plain", b"x" * 300_000, {}),
        "/hop": (302, "text/plain", b"", {"Location": "http://127.0.0.2:9/secret"}),
        "/report": (
            200,
            "application/octet-stream",
            b"# Report\n\nQuarterly numbers.",
            {"Content-Disposition": 'attachment; filename="q3-report.md"'},
        ),
    }
    yield f"http://{address}"
    server.shutdown()
    server.server_close()


def test_a_person_creates_uploads_polls_searches_downloads_and_deletes(admin, celery_worker, media):
    client = _person(admin)
    created = client.post(f"{_root(admin)}/knowledge-bases/", {"name": "handbook", "title": "Handbook"}, format="json")
    assert created.status_code == 201, created.data
    assert created.data["documents"] == 0
    upload = client.post(
        f"{_root(admin)}/knowledge-bases/handbook/documents/",
        {"file": SimpleUploadedFile("handbook.md", HANDBOOK.encode()), "tags": "guide"},
        format="multipart",
    )
    assert upload.status_code == 201, upload.data
    assert upload.data["status"] == DocumentStatus.UPLOADED
    assert upload.data["uri"] == f"kb://handbook/{upload.data['id']}"
    _wait_until_settled(Document.objects.get(pk=upload.data["id"]))
    detail = client.get(f"{_root(admin)}/knowledge-bases/handbook/documents/{upload.data['id']}/").data
    assert detail["status"] == "ready"
    assert detail["progress"] == 100
    assert detail["chunk_count"] >= 1
    listed = client.get(f"{_root(admin)}/knowledge-bases/handbook/documents/?status=ready").data
    assert listed["count"] == 1
    assert listed["results"][0]["tags"] == ["guide"]
    found = client.post(
        f"{_root(admin)}/knowledge/search/", {"query": "when do invoices arrive", "top_k": 3}, format="json"
    )
    assert found.status_code == 200
    assert "**Invoices**" in found.data["results"][0]["snippet"]
    download = client.get(f"{_root(admin)}/knowledge-bases/handbook/documents/{upload.data['id']}/download/")
    assert b"".join(download.streaming_content) == HANDBOOK.encode()
    gone = client.delete(f"{_root(admin)}/knowledge-bases/handbook/documents/{upload.data['id']}/")
    assert gone.status_code == 204
    assert client.delete(f"{_root(admin)}/knowledge-bases/handbook/").status_code == 204
    assert not KnowledgeBase.objects.filter(workspace=admin.workspace).exists()
    assert _stored_files(media) == []


def test_errors_have_their_status_and_store_nothing(admin, media):
    client = _person(admin)
    knowledge_base_create(actor=admin, name="docs")
    url = f"{_root(admin)}/knowledge-bases/docs/documents/"
    too_big = client.post(url, {"file": SimpleUploadedFile("big.txt", b"y" * 250_000)}, format="multipart")
    assert too_big.status_code == 413
    assert too_big.data["code"] == "too_large"
    assert "accepts files up to" in too_big.data["message"]
    wrong = client.post(url, {"file": SimpleUploadedFile("tool.exe", b"MZ\x90\x00" * 10)}, format="multipart")
    assert wrong.status_code == 400
    neither = client.post(url, {}, format="multipart")
    assert neither.status_code == 400
    assert "either a file" in str(neither.data)
    assert client.post(f"{_root(admin)}/knowledge-bases/nope/documents/", {}, format="json").status_code == 404
    assert not Document.objects.exists()
    assert _stored_files(media) == []


def test_keys_act_within_their_scopes(admin, media):
    knowledge_base_create(actor=admin, name="public")
    knowledge_base_create(actor=admin, name="private")
    scoped = _key_client(admin, knowledge_bases=["public"])
    names = [base["name"] for base in scoped.get(f"{_root(admin)}/knowledge-bases/").data]
    assert names == ["public"]
    upload = scoped.post(
        f"{_root(admin)}/knowledge-bases/public/documents/",
        {"file": SimpleUploadedFile("a.md", b"# A\n\nalpha")},
        format="multipart",
    )
    assert upload.status_code == 201, upload.data
    outside = scoped.post(
        f"{_root(admin)}/knowledge-bases/private/documents/",
        {"file": SimpleUploadedFile("b.md", b"# B\n\nbeta")},
        format="multipart",
    )
    assert outside.status_code == 404
    read_only = _key_client(admin, read_only=True)
    refused = read_only.post(
        f"{_root(admin)}/knowledge-bases/private/documents/",
        {"file": SimpleUploadedFile("c.md", b"# C\n\ngamma")},
        format="multipart",
    )
    assert refused.status_code == 403
    assert "read-only" in refused.data["message"]
    no_person = scoped.post(f"{_root(admin)}/knowledge-bases/", {"name": "new"}, format="json")
    assert no_person.status_code == 403
    other = MembershipFactory.create(role=Role.OWNER)
    stranger = _key_client(other)
    assert stranger.get(f"{_root(admin)}/knowledge-bases/").status_code == 404
    document = Document.objects.get(name="a.md")
    assert stranger.get(f"{_root(admin)}/knowledge-bases/public/documents/{document.pk}/").status_code == 404
    assert stranger.get(f"/api/v1/workspaces/{other.workspace_id}/knowledge-bases/").data == []
    assert Document.objects.count() == 1


def test_upload_by_url_goes_through_the_ssrf_guard(admin, site, media):
    client = _person(admin)
    knowledge_base_create(actor=admin, name="web")
    url = f"{_root(admin)}/knowledge-bases/web/documents/"
    page = client.post(url, {"url": f"{site}/guide/", "tags": "web"}, format="json")
    assert page.status_code == 201, page.data
    assert page.data["name"] == "guide.html"
    assert page.data["source_url"] == f"{site}/guide/"
    report = client.post(url, {"url": f"{site}/report"}, format="json")
    assert report.status_code == 201, report.data
    assert report.data["name"] == "q3-report.md"
    missing = client.post(url, {"url": f"{site}/missing"}, format="json")
    assert missing.status_code == 400
    assert "answered 404" in missing.data["message"]
    big = client.post(url, {"url": f"{site}/big.txt"}, format="json")
    assert big.status_code == 413
    hop = client.post(url, {"url": f"{site}/hop"}, format="json")  # a redirect into the private network
    assert hop.status_code == 400
    assert "127.0.0.2" in hop.data["message"]
    for private in ("http://127.0.0.1:1/x", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a"):
        refused = client.post(url, {"url": private}, format="json")
        assert refused.status_code == 400, (private, refused.data)
    assert client.post(url, {"url": "file:///etc/passwd"}, format="json").status_code == 400
    assert Document.objects.count() == 2
    assert len(_stored_files(media)) == 2
