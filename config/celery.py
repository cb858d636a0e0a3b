"""The Celery app: configured from Django settings (`CELERY_*`), tasks found in each installed app's tasks.py."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("toolport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def filesystem_broker_folders() -> list[Path]:
    """The folders of the no-server local broker (kombu's filesystem transport); empty for any other broker."""
    if not str(app.conf.broker_url).startswith("filesystem://"):
        return []
    return [Path(value) for key, value in app.conf.broker_transport_options.items() if "folder" in key]


@app.on_after_configure.connect
def _create_filesystem_broker_folders(**kwargs: object) -> None:
    """Every process that loads the config (web, worker, beat) can then send or receive at once."""
    for folder in filesystem_broker_folders():
        folder.mkdir(parents=True, exist_ok=True)
