"""Background work of RAG. Tasks take ids and call a service; with acks_late (settings) a worker killed mid-document
leaves the message to be redelivered, and `document_ingest` finishes the document with no duplicate chunks."""

from uuid import UUID

from celery import shared_task

from rag.services import document_ingest


@shared_task(
    name="rag.document_ingest",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def document_ingest_task(document_id: str) -> str:
    return document_ingest(UUID(document_id))
