"""A document's original file for the console and the REST API: a redirect to a presigned URL valid one hour when
the files are on S3, else streamed from disk as an attachment (never rendered inline)."""

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect

from core.errors import NotFound
from rag.models import Document
from rag.services import document_download_url


def document_file_response(document: Document) -> HttpResponseBase:
    url = document_download_url(document)
    if url:
        return HttpResponseRedirect(url)
    try:
        file = default_storage.open(str(document.file.name), "rb")
    except FileNotFoundError as error:
        raise NotFound("The stored file is missing; delete the document and upload it again.") from error
    return FileResponse(file, as_attachment=True, filename=document.name, content_type=document.content_type)
