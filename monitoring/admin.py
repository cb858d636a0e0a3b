from django.contrib import admin
from unfold.admin import ModelAdmin

from monitoring.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ModelAdmin):
    list_display = ("created_at", "action", "actor_email", "workspace", "target_repr", "ip")
    list_filter = ("action",)
    search_fields = ("actor_email", "target_repr", "action")
    date_hierarchy = "created_at"

    # The audit trail is append-only, even for staff.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
