from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.urls import path
from django.utils import timezone
from django.views.generic import TemplateView
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, FieldTextFilter, RelatedDropdownFilter
from unfold.views import UnfoldModelAdminViewMixin

from monitoring import dashboards, staff
from monitoring.dashboards import Window
from monitoring.models import AuditEvent


class OverviewView(UnfoldModelAdminViewMixin, TemplateView):
    """Operations at a glance, for staff."""

    title = "Operations overview"
    permission_required = ()
    template_name = "admin/monitoring/overview.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        days = 14
        window = Window.ending_now(days, ZoneInfo("UTC"), timezone.now())
        month = timezone.now() - timedelta(days=30)
        return {
            **super().get_context_data(**kwargs),
            "days": days,
            "charts": dashboards.charts(workspace_id=None, window=window),
            "top_tools": dashboards.top_tools(workspace_id=None, since=month),
            "top_workspaces": staff.top_workspaces(since=month),
            "subscriptions": staff.subscriptions_by_plan(),
            "sessions": staff.active_sessions(),
            "ingestion": staff.ingestion(),
            "circuits": staff.upstream_circuits(),
        }


class RecentFilter(admin.SimpleListFilter):
    """When: the last hour, day, week or month (the date hierarchy above the list picks a given day)."""

    title = "when"
    parameter_name = "within"
    PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}

    def lookups(self, request, model_admin):
        return [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")]

    def queryset(self, request, queryset):
        period = self.PERIODS.get(self.value() or "")
        return queryset.filter(created_at__gte=timezone.now() - period) if period else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ModelAdmin):
    list_display = ("created_at", "action", "actor_email", "workspace", "target_repr", "ip")
    list_filter = (
        ("action", ChoicesDropdownFilter),
        ("actor_email", FieldTextFilter),
        ("workspace", RelatedDropdownFilter),
        RecentFilter,
    )
    list_filter_submit = True  # the text filter and the others apply together
    search_fields = ("actor_email", "target_repr", "action", "target_id", "workspace__name")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)

    def get_urls(self):
        overview = self.admin_site.admin_view(OverviewView.as_view(model_admin=self))
        return [path("overview/", overview, name="monitoring_overview"), *super().get_urls()]

    # The audit trail is append-only, even for staff.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
