from django.urls import path

from rag import views

base = "w/<uuid:workspace_id>/knowledge/<slug:name>"
document = f"{base}/documents/<uuid:document_id>"

# "-" cannot start a knowledge base's name, so the pages under knowledge/-/ never clash with one.
console_patterns = [
    path("w/<uuid:workspace_id>/knowledge/", views.knowledge_list, name="knowledge"),
    path("w/<uuid:workspace_id>/knowledge/-/search/", views.knowledge_search, name="knowledge_search"),
    path(f"{base}/", views.knowledge_base, name="knowledge_base"),
    path(f"{base}/delete/", views.knowledge_base_delete, name="knowledge_base_delete"),
    path(f"{base}/upload/", views.document_upload, name="document_upload"),
    path(f"{base}/fetch/", views.document_fetch, name="document_fetch"),
    path(f"{document}/", views.document_detail, name="document"),
    path(f"{document}/row/", views.document_row, name="document_row"),
    path(f"{document}/download/", views.document_download, name="document_download"),
    path(f"{document}/retry/", views.document_retry, name="document_retry"),
    path(f"{document}/delete/", views.document_delete, name="document_delete"),
]
