from django.contrib import admin
from unfold.admin import ModelAdmin

from billing.models import BillingAccount, Plan, QuotaCounter


@admin.register(Plan)
class PlanAdmin(ModelAdmin):
    list_display = ("name", "tier", "price_cents", "api_calls_per_month", "ai_operations_per_month", "storage_bytes")
    ordering = ("sort_order",)


@admin.register(BillingAccount)
class BillingAccountAdmin(ModelAdmin):
    list_display = ("workspace", "plan", "status", "period_end", "cancel_at_period_end")
    list_filter = ("plan", "status")
    search_fields = ("workspace__name", "stripe_customer_id", "stripe_subscription_id")
    raw_id_fields = ("workspace",)


@admin.register(QuotaCounter)
class QuotaCounterAdmin(ModelAdmin):
    list_display = ("workspace", "metric", "period_start", "used")
    list_filter = ("metric",)

    def has_change_permission(self, request, obj=None):
        return False
