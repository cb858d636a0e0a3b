"""Background work of RAG. Tasks take ids and call a service; with acks_late (settings) a worker killed mid-document
leaves the message to be redelivered, and `document_ingest` finishes the document with no duplicate chunks."""

from uuid import UUID

from celery import shared_task

from rag.reembedding import TASK_SECONDS, embeddings_reembed
from rag.services import document_ingest, orphaned_files_delete


@shared_task(
    name="rag.document_ingest",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def document_ingest_task(document_id: str) -> str:
    return document_ingest(UUID(document_id))


@shared_task(name="rag.orphaned_files_delete", ignore_result=True)
def orphaned_files_delete_task() -> int:
    """Remove stored document files no document references (beat runs it hourly); returns how many went."""
    return orphaned_files_delete()


@shared_task(name="rag.embeddings_reembed", ignore_result=True)
def embeddings_reembed_task() -> str:
    """Beat runs it every minute. Nothing to do unless the configured embedding model differs from the active one;
    then it re-embeds for up to TASK_SECONDS and queues itself to go on (a killed run resumes from the data)."""
    progress = embeddings_reembed(time_budget=TASK_SECONDS)
    if progress.status == "in_progress":
        embeddings_reembed_task.delay()
    return progress.status
