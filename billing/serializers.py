from rest_framework import serializers

from billing.models import Plan


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = (
            "tier",
            "name",
            "description",
            "price_cents",
            "currency",
            "api_calls_per_month",
            "ai_operations_per_month",
            "storage_bytes",
            "max_active_api_keys",
            "max_concurrent_sessions",
            "requests_per_minute_per_key",
            "max_security_level",
            "custom_tools_allowed",
            "max_upload_bytes",
        )


class QuotaStatusSerializer(serializers.Serializer):
    metric = serializers.CharField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited")
    used = serializers.IntegerField()
    remaining = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField()


class BillingSerializer(serializers.Serializer):
    plan = PlanSerializer()
    status = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    usage = QuotaStatusSerializer(many=True)
