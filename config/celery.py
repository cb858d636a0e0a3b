"""The Celery app: configured from Django settings (`CELERY_*`), tasks found in each installed app's tasks.py."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("toolport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def filesystem_broker_folders() -> list[Path]:
    """The folders of the no-server local broker (kombu's filesystem transport); empty for any other broker."""
    if not str(app.conf.broker_url).startswith("filesystem://"):
        return []
    return [Path(value) for key, value in app.conf.broker_transport_options.items() if "folder" in key]


@setup_logging.connect
def _keep_django_logging(**kwargs: object) -> None:
    """Workers log through Django's LOGGING (structlog: JSON lines with the request id in production), not Celery's
    own format: a receiver here stops Celery from replacing the root logger's handlers."""


@app.on_after_configure.connect
def _create_filesystem_broker_folders(**kwargs: object) -> None:
    """Every process that loads the config (web, worker, beat) can then send or receive at once."""
    for folder in filesystem_broker_folders():
        folder.mkdir(parents=True, exist_ok=True)
