from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        from core.audit import audit_recorder_register
        from monitoring.services import audit_event_store

        audit_recorder_register(audit_event_store)
