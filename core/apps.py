from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import logging, request_id

        logging.configure()
        request_id.celery_signals_connect()  # tasks log the request id of the web request that queued them
