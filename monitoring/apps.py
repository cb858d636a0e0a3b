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

        from monitoring import receivers  # noqa: F401 - a deleted workspace's usage goes with it
        from monitoring.calls import tool_call_listener_register
        from monitoring.usage import record

        tool_call_listener_register(record)  # every tool call into the usage ledger, in batches

        from accounts.navigation import Section, dashboard_panel_register, section_register
        from monitoring.console import usage_panel

        section_register(Section("usage", "Usage", "console:usage", 40))
        dashboard_panel_register(usage_panel)  # the console's home shows quotas, charts and recent calls
