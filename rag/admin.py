"""Staff admin for knowledge: global knowledge bases (published to chosen plan tiers), their documents (upload,
retry, delete), and a read-only view of workspaces' knowledge bases. Every change goes through the services, which
audit it."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from billing.models import Tier
from core.errors import ToolportError
from rag import services
from rag.models import Document, DocumentStatus, KnowledgeBase


class KnowledgeBaseAdminForm(forms.ModelForm):
    plan_tiers = forms.MultipleChoiceField(
        choices=Tier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Workspaces on these plans can search and read this knowledge base (their keys within scope).",
    )

    class Meta:
        model = KnowledgeBase
        fields = ("name", "title", "description", "plan_tiers")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)]


class UploadForm(forms.Form):
    documents = MultipleFileField(help_text="Text, Markdown, HTML or PDF; several at once.")
    tags = forms.CharField(required=False, help_text="Comma-separated.")


class DocumentInline(TabularInline):
    model = Document
    fields = ("name", "status", "progress", "chunk_count", "size_bytes", "error", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(ModelAdmin):
    form = KnowledgeBaseAdminForm
    list_display = ("name", "title", "scope", "plan_tiers", "documents")
    list_filter = (("workspace", admin.EmptyFieldListFilter),)
    search_fields = ("name", "title", "workspace__name")
    inlines = [DocumentInline]
    actions_detail = ["upload_documents"]

    @admin.display(description="Owner")
    def scope(self, base: KnowledgeBase) -> str:
        return base.workspace.name if base.workspace else "Global"

    @admin.display(description="Documents")
    def documents(self, base: KnowledgeBase) -> int:
        return base.documents.count()

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workspace")

    def _global_or_none(self, request, obj) -> bool:
        if isinstance(obj, str):  # unfold's detail actions pass the object's id
            try:
                obj = KnowledgeBase.objects.filter(pk=obj).first()
            except ValidationError:  # not a UUID
                return False
        return obj is None or obj.workspace_id is None

    def has_change_permission(self, request, obj=None):
        # A workspace's knowledge bases are its admins' to change: staff see them read-only.
        return super().has_change_permission(request, obj) and self._global_or_none(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._global_or_none(request, obj)

    def save_model(self, request, obj, form, change):
        services.knowledge_base_publish(actor=request.user, knowledge_base=obj, request=request)

    def delete_model(self, request, obj):
        services.knowledge_base_delete(actor=request.user, knowledge_base=obj, request=request)

    def delete_queryset(self, request, queryset):
        for base in queryset:
            services.knowledge_base_delete(actor=request.user, knowledge_base=base, request=request)

    @action(description="Upload documents", url_path="upload", permissions=["change"])
    def upload_documents(self, request: HttpRequest, object_id: str) -> HttpResponse:
        base = get_object_or_404(KnowledgeBase, pk=object_id, workspace__isnull=True)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            tags = services.tags_clean(form.cleaned_data["tags"])
            for file in form.cleaned_data["documents"]:
                try:
                    services.document_upload_file(
                        actor=request.user,  # type: ignore[arg-type]  # staff: admin views require a user
                        knowledge_base=base,
                        file=file,
                        tags=tags,
                        request=request,
                    )
                except ToolportError as error:
                    messages.error(request, error.message)
                else:
                    messages.success(request, f"{file.name} uploaded; it is being processed.")
            return HttpResponseRedirect(reverse("admin:rag_knowledgebase_change", args=[base.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": base,
            "title": f"Upload documents to {base.name}",
            "base": base,
            "form": form,
        }
        return TemplateResponse(request, "admin/rag/knowledgebase/upload.html", context)


@admin.register(Document)
class DocumentAdmin(ModelAdmin):
    list_display = (
        "name",
        "knowledge_base",
        "workspace",
        "status",
        "progress",
        "chunk_count",
        "size_bytes",
        "created_at",
    )
    list_filter = ("status", ("workspace", admin.EmptyFieldListFilter))
    search_fields = ("name", "title", "knowledge_base__name", "workspace__name")
    readonly_fields = [field.name for field in Document._meta.fields]
    actions = ["retry_failed"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("knowledge_base", "workspace")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.workspace_id is None)

    def delete_model(self, request, obj):
        services.document_delete(actor=request.user, document=obj, request=request)

    def delete_queryset(self, request, queryset):
        for document in queryset.filter(workspace__isnull=True):
            services.document_delete(actor=request.user, document=document, request=request)

    @admin.action(description="Retry the selected failed documents (global knowledge bases)")
    def retry_failed(self, request, queryset):
        retried = 0
        for document in queryset.filter(status=DocumentStatus.FAILED, workspace__isnull=True):
            services.document_retry(actor=request.user, document=document, request=request)
            retried += 1
        messages.info(request, f"{retried} document{'s' if retried != 1 else ''} queued again.")
