from django.urls import path

from rag import api

workspace = "workspaces/<str:workspace_id>"
base = f"{workspace}/knowledge-bases/<slug:name>"
document = f"{base}/documents/<uuid:document_id>"

urlpatterns = [
    path(f"{workspace}/knowledge-bases/", api.KnowledgeBaseListView.as_view(), name="knowledge-base-list"),
    path(f"{base}/", api.KnowledgeBaseDetailView.as_view(), name="knowledge-base-detail"),
    path(f"{base}/documents/", api.DocumentListView.as_view(), name="document-list"),
    path(f"{document}/", api.DocumentDetailView.as_view(), name="document-detail"),
    path(f"{document}/retry/", api.DocumentRetryView.as_view(), name="document-retry"),
    path(f"{document}/download/", api.DocumentDownloadView.as_view(), name="document-download"),
    path(f"{workspace}/knowledge/search/", api.SearchView.as_view(), name="knowledge-search"),
]
