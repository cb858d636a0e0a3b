"""Document files on S3 (against moto's S3 server on 127.0.0.1, seen through boto3 and plain HTTP) and on local disk:
keys, privacy, ingestion through a real worker, signed downloads, deletion and the orphaned-file sweep."""

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from config.storage import default_storage_from_env
from rag.models import DocumentStatus
from rag.services import document_delete, document_download_url, document_upload, knowledge_base_create
from rag.tasks import orphaned_files_delete_task
from rag.tests.test_ingestion import _member, _wait_until_settled

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TEXT = ("Hypersonic inlets compress the air before combustion; shock trains set the pressure recovery. " * 40).encode()
HOUR = 3600


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1: every call below goes over HTTP to it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, settings) -> str:
    """A fresh private bucket, and the default storage switched to it through the same settings code production
    runs (config.storage reading the environment)."""
    name = f"toolport-{uuid.uuid4().hex[:12]}"
    for variable, value in {
        "TOOLPORT_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": name,
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-access-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret-key",
        "AWS_S3_ADDRESSING_STYLE": "path",
    }.items():
        monkeypatch.setenv(variable, value)
    _client(s3_endpoint).create_bucket(Bucket=name)
    # Django's setting_changed receiver drops the cached storages, so default_storage is built anew from this.
    settings.STORAGES = {**settings.STORAGES, "default": default_storage_from_env()}
    assert default_storage.__class__.__name__ == "S3Storage"
    return name


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-access-key",
        aws_secret_access_key="test-secret-key",
    )


def _keys(s3_endpoint: str, bucket: str) -> set[str]:
    listing = _client(s3_endpoint).list_objects_v2(Bucket=bucket)
    return {entry["Key"] for entry in listing.get("Contents", ())}


def test_on_s3_a_document_is_private_ingested_downloadable_for_an_hour_and_deleted(s3_endpoint, bucket, celery_worker):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="research")
    document = document_upload(actor=member, knowledge_base=knowledge_base, name="inlet notes.txt", data=TEXT)

    key = str(document.file.name)
    assert re.fullmatch(
        rf"workspaces/{member.workspace_id}/documents/\d{{4}}/\d{{2}}/[0-9a-f-]{{36}}-inlet-notes\.txt", key
    )
    client = _client(s3_endpoint)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == TEXT
    grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]  # the owner only
    assert all("URI" not in grant["Grantee"] for grant in grants)  # no AllUsers / AuthenticatedUsers grant
    assert httpx.get(f"{s3_endpoint}/{bucket}/{key}").status_code == 403  # anonymous read refused

    document = _wait_until_settled(document)  # the worker reads the file back from the bucket
    assert (document.status, document.error) == (DocumentStatus.READY, "")
    assert document.chunk_count >= 2

    url = document_download_url(document)
    assert url is not None
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(HOUR)]
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == TEXT
    assert response.headers["content-disposition"] == 'attachment; filename="inlet notes.txt"'

    document_delete(actor=member, document=document)
    with pytest.raises(ClientError) as error:
        client.head_object(Bucket=bucket, Key=key)
    assert error.value.response["Error"]["Code"] == "404"
    assert httpx.get(url).status_code in (403, 404)  # the signed URL now gets nothing (which code: the store's rights)


def test_on_s3_an_existing_key_is_never_overwritten(s3_endpoint, bucket):
    first = default_storage.save("workspaces/w/documents/2026/01/same.txt", ContentFile(b"first"))
    second = default_storage.save("workspaces/w/documents/2026/01/same.txt", ContentFile(b"second"))
    assert first != second
    client = _client(s3_endpoint)
    assert client.get_object(Bucket=bucket, Key=first)["Body"].read() == b"first"
    assert client.get_object(Bucket=bucket, Key=second)["Body"].read() == b"second"


def test_on_s3_the_sweep_removes_old_orphans_only(s3_endpoint, bucket, settings):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="research")
    kept = document_upload(actor=member, knowledge_base=knowledge_base, name="kept.txt", data=TEXT)
    client = _client(s3_endpoint)
    orphan = f"workspaces/{member.workspace_id}/documents/2026/01/{uuid.uuid4()}-lost.txt"
    global_orphan = f"global/documents/2026/01/{uuid.uuid4()}-lost.txt"
    elsewhere = [f"workspaces/{member.workspace_id}/exports/report.csv", ".readyz/probe", "notes/documents/x.txt"]
    for key in [orphan, global_orphan, *elsewhere]:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")

    # Every file was written just now: inside the hour's grace nothing goes, orphan or not.
    assert orphaned_files_delete_task.apply().get() == 0
    assert {orphan, global_orphan} <= _keys(s3_endpoint, bucket)

    # S3 sets an object's time itself; a zero grace makes all of them old enough.
    settings.RAG_ORPHANED_FILE_GRACE_SECONDS = 0
    assert orphaned_files_delete_task.apply().get() == 2
    assert _keys(s3_endpoint, bucket) == {str(kept.file.name), *elsewhere}


def test_without_s3_there_is_no_download_url(media):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="research")
    document = document_upload(actor=member, knowledge_base=knowledge_base, name="notes.txt", data=TEXT)
    assert document_download_url(document) is None  # the console streams it through an authorised view


def test_on_local_disk_the_sweep_removes_orphans_older_than_the_grace(settings, media):
    member = _member()
    knowledge_base = knowledge_base_create(actor=member, name="research")
    kept = document_upload(actor=member, knowledge_base=knowledge_base, name="kept.txt", data=TEXT)
    documents = media / "workspaces" / str(member.workspace_id) / "documents" / "2026" / "01"
    old_orphan = _file(documents / "1-lost.txt", age=2 * HOUR)
    young_orphan = _file(documents / "2-uploading.txt", age=60)
    global_orphan = _file(media / "global" / "documents" / "2026" / "01" / "3-lost.txt", age=2 * HOUR)
    elsewhere = _file(media / "workspaces" / str(member.workspace_id) / "exports" / "report.csv", age=2 * HOUR)
    kept_path = media / str(kept.file.name)
    os.utime(kept_path, (time.time() - 2 * HOUR,) * 2)  # an old file that a document references

    assert settings.CELERY_BEAT_SCHEDULE["rag-orphaned-files-delete"]["task"] == orphaned_files_delete_task.name
    assert orphaned_files_delete_task.apply().get() == 2

    assert not old_orphan.exists()
    assert not global_orphan.exists()
    assert young_orphan.exists()
    assert elsewhere.exists()
    assert kept_path.read_bytes() == TEXT


def _file(path: Path, age: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (time.time() - age,) * 2)
    return path
