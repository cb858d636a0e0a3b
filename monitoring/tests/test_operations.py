"""/stats for operators (the metrics token or staff), /capabilities for anyone, and the request id: in the response
header, on the log lines of the request and of the Celery task it queued."""

import json
import logging
import time
import uuid

import pytest
import structlog
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, UserFactory, issue_key
from billing.models import BillingAccount
from billing.quotas import quota_policy_forget
from billing.tests.factories import workspace_on_plan
from core.logging import JSON_RENDERER, SHARED_PROCESSORS
from rag.models import Document, DocumentStatus
from rag.services import knowledge_base_create

TOKEN = "stats-secret-7"


@pytest.mark.django_db
def test_stats_count_tenants_and_name_versions_for_operators_only(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/stats").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/stats").status_code == 401
    assert client.get("/stats", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    member = MembershipFactory.create(role=Role.OWNER)
    issue_key(member)
    knowledge_base_create(actor=member, name="docs")

    stats = client.get("/stats", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()

    counts = stats["counts"]
    assert counts["workspaces"] >= 1
    assert counts["api_keys"] >= 1
    assert counts["api_keys_active"] >= 1
    assert counts["knowledge_bases"] >= 1
    assert counts["tools_global"] >= 1  # the built-ins
    assert {"tools", "prompts", "documents", "chunks"} <= set(counts)
    versions = stats["versions"]
    assert versions["postgresql"].startswith("18")
    assert versions["pgvector"].startswith("0.8")
    assert versions["mcp_sdk"] == "2.3.0"
    assert versions["django"].startswith("6.")
    assert versions["python"].startswith("3.")
    assert "git_commit" in stats

    client.force_login(UserFactory.create(is_staff=True))
    assert client.get("/stats").status_code == 200  # staff, signed in, without the token
    client.force_login(member.user)
    assert client.get("/stats").status_code == 401


@pytest.mark.django_db
def test_capabilities_are_public(client):
    cache.clear()
    response = client.get("/capabilities")

    assert response.status_code == 200
    body = response.json()
    transports = {transport["name"]: transport for transport in body["transports"]}
    assert set(transports) == {"streamable-http", "sse", "websocket"}
    assert transports["streamable-http"]["protocol_versions"] == [
        *HANDSHAKE_PROTOCOL_VERSIONS,
        *MODERN_PROTOCOL_VERSIONS,
    ]
    assert body["protocol_versions"]["stateless"] == ["2026-07-28"]
    assert "2024-11-05" in body["protocol_versions"]["handshake"]
    assert body["counts"]["tools"] >= 4  # whoami, get_usage, find_tools, echo, ...
    assert {"prompts", "resources"} <= set(body["counts"])
    assert body["capabilities"]["tools"] == {"listChanged": True}


def test_a_request_id_is_taken_or_made_and_returned(client):
    given = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a:1")
    assert given["X-Request-ID"] == "edge-7f3a:1"
    made = client.get("/healthz")
    assert len(made["X-Request-ID"]) == 32
    forged = client.get("/healthz", HTTP_X_REQUEST_ID='x" level=error msg="forged')
    assert forged["X-Request-ID"] != 'x" level=error msg="forged'
    assert len(forged["X-Request-ID"]) == 32


class _JsonLines(logging.Handler):
    """The JSON lines production writes (core.logging's renderer), kept for the test to read."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(
            structlog.stdlib.ProcessorFormatter(processor=JSON_RENDERER, foreign_pre_chain=SHARED_PROCESSORS)
        )
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_request_id_reaches_the_log_of_the_task_the_request_queued(celery_worker, media):
    workspace = workspace_on_plan(api_calls=None, ai_operations=10_000)
    plan = BillingAccount.objects.get(workspace=workspace).plan
    plan.max_upload_bytes = 200_000
    plan.storage_bytes = 50_000_000
    plan.save()
    quota_policy_forget(workspace_id=workspace.pk)
    member = MembershipFactory.create(workspace=workspace, role=Role.ADMIN)
    knowledge_base_create(actor=member, name="handbook")
    client = APIClient()
    client.force_authenticate(member.user)
    request_id = f"upload-{uuid.uuid4().hex[:8]}"
    lines = _JsonLines()
    logger = logging.getLogger("rag.services")
    logger.addHandler(lines)
    try:
        upload = client.post(
            f"/api/v1/workspaces/{workspace.pk}/knowledge-bases/handbook/documents/",
            {"file": SimpleUploadedFile("notes.md", b"# Notes\n\n## Invoices\n\nSent on the first of the month.\n")},
            format="multipart",
            HTTP_X_REQUEST_ID=request_id,
        )
        assert upload.status_code == 201, upload.data
        assert upload["X-Request-ID"] == request_id
        deadline = time.monotonic() + 60
        while Document.objects.get(pk=upload.data["id"]).status != DocumentStatus.READY:
            assert time.monotonic() < deadline, "the document was not ingested"
            time.sleep(0.2)
        time.sleep(0.2)
    finally:
        logger.removeHandler(lines)

    ingested = [line for line in lines.lines if line["event"].startswith("Ingested document")]
    assert ingested, lines.lines
    assert ingested[0]["request_id"] == request_id
    assert ingested[0]["task"] == "rag.document_ingest"
    assert ingested[0]["task_id"]
    assert structlog.contextvars.get_contextvars().get("request_id") is None  # nothing leaks into this thread
