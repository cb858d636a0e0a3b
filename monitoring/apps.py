from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        from core.audit import audit_recorder_register
        from monitoring.services import audit_event_store

        audit_recorder_register(audit_event_store)

        from core.observe import quota_denial_observer_register
        from monitoring import metrics
        from monitoring.calls import tool_call_listener_register

        tool_call_listener_register(metrics.tool_call_count)  # Prometheus counters (monitoring.metrics)
        quota_denial_observer_register(metrics.quota_denial_count)
